"""Idempotency keys, one store per merchant and endpoint, kept for `C.IDEMPOTENCY_TTL_SECONDS`.

A finished request's answer is kept under its key so a retry with the same body gets it again; a
running one holds its key so a concurrent retry is refused rather than run twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from gravity import conventions as C
from gravity.sandbox.clock import SandboxClock, instant
from gravity.sandbox.errors import ApiError
from gravity.sandbox.store import Store


class IdempotencyKeys:
    """Each slot is `oid|endpoint|key` -> hash of the body, when it began, and, once done, the answer."""

    def __init__(self, store: Store, clock: SandboxClock) -> None:
        self._store = store
        self._clock = clock
        self.entries: dict[str, dict[str, Any]] = {}

    def begin(self, oid: str, endpoint: str, key: str, body: bytes) -> tuple[int, str] | None:
        """Replay a finished identical request, refuse a conflicting one, or mark this one running."""
        digest = hashlib.sha256(body).hexdigest()
        slot = f"{oid}|{endpoint}|{key}"
        with self._store.lock:
            entry = self.entries.get(slot)
            if entry is not None:
                created = instant(entry["created_at"])
                if (self._clock.now() - created).total_seconds() > C.IDEMPOTENCY_TTL_SECONDS:
                    entry = None
            if entry is None:
                if len(self.entries) >= 1000 and len(self.entries) % 1000 == 0:
                    self._purge_expired()
                self.entries[slot] = {"hash": digest, "created_at": self._clock.now().isoformat(), "done": False}
                return None
            if entry["hash"] != digest:
                raise ApiError(409, C.IDEMPOTENCY_CONFLICT_MESSAGE)
            if not entry["done"]:
                raise ApiError(409, C.IDEMPOTENCY_IN_PROGRESS_MESSAGE)
            return int(entry["status"]), str(entry["body"])

    def _purge_expired(self) -> None:
        now = self._clock.now()
        self.entries = {
            slot: entry
            for slot, entry in self.entries.items()
            if not entry["done"] or (now - instant(entry["created_at"])).total_seconds() <= C.IDEMPOTENCY_TTL_SECONDS
        }

    def finish(self, oid: str, endpoint: str, key: str, status: int, body: str) -> None:
        with self._store.lock:
            entry = self.entries.get(f"{oid}|{endpoint}|{key}")
            if entry is not None:
                entry.update(status=status, body=body, done=True)
                self._store.save()

    def abandon(self, oid: str, endpoint: str, key: str) -> None:
        """The request was not processed (injected 500/429, crash): forget the running marker."""
        with self._store.lock:
            slot = f"{oid}|{endpoint}|{key}"
            if slot in self.entries and not self.entries[slot]["done"]:
                del self.entries[slot]

    def clear(self) -> None:
        self.entries = {}

    def dump(self) -> dict[str, Any]:
        """Only finished requests: a running one did not survive the restart."""
        return {"idempotency": {k: v for k, v in self.entries.items() if v.get("done")}}

    def load(self, data: Mapping[str, Any]) -> None:
        self.entries = dict(data.get("idempotency", {}))
