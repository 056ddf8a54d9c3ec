"""Which Gravity client talks for which clinic location.

One `GravityClient` per merchant OID (connections are reused across activities in a worker); the
token comes from the settings (per-OID or partner), never from the database.
"""

from __future__ import annotations

from typing import Any, Protocol

from gravity.client import GravityClient


class TransactionListing(Protocol):
    """A gateway's own list of a merchant's transactions: the sandbox has one, emergepay none."""

    async def transactions(self, oid: str) -> list[dict[str, Any]]: ...


class GatewayDirectory:
    """Gravity clients by merchant OID, created on first use and closed with the worker; and
    `listing`, the gateway's transaction list, where the gateway offers one (None otherwise)."""

    def __init__(
        self,
        base_url: str,
        tokens: dict[str, str],
        *,
        default_token: str | None = None,
        timeout: float = 15.0,
        listing: TransactionListing | None = None,
        tell_sandbox_time: bool = False,
    ) -> None:
        self.listing = listing
        self._base_url = base_url
        self._tell_time = tell_sandbox_time  # the demo's sandbox only: see `gravity.client.CALLER_TIME`
        self._tokens = dict(tokens)
        self._default_token = default_token
        self._timeout = timeout
        self._clients: dict[str, GravityClient] = {}

    def for_oid(self, oid: str) -> GravityClient:
        client = self._clients.get(oid)
        if client is None:
            token = self._tokens.get(oid) or self._default_token
            if token is None:
                raise LookupError(f"no Gravity token configured for merchant OID {oid}")
            client = GravityClient(self._base_url, oid, token, timeout=self._timeout, tell_sandbox_time=self._tell_time)
            self._clients[oid] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
