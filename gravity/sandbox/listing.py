"""The sandbox's list of every transaction it holds, as the engine's reconciliation reads it.

Production emergepay offers no such list (a lookup by external id is all), so only a directory
pointed at the local sandbox carries one (`stack.gravity_config`, `api.app.gateways_for`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gravity.errors import GravityError
from gravity.sandbox.control import SandboxControl, SandboxControlError


class SandboxListing:
    """A merchant's transactions, read from the sandbox's control surface at `base_url`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self._base_url = base_url
        self._timeout = timeout

    async def transactions(self, oid: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read, oid)

    def _read(self, oid: str) -> list[dict[str, Any]]:
        try:
            with SandboxControl(self._base_url, timeout=self._timeout) as control:
                return control.transactions(oid)
        except (httpx.HTTPError, SandboxControlError) as error:
            raise GravityError(f"the sandbox's transaction list did not answer: {error}", endpoint="transactions") from None
