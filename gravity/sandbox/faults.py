"""Faults a test injects into the next calls of an endpoint: 500, 429, 404, slow, lost or amountless."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from gravity import conventions as C
from gravity.sandbox.errors import ApiError
from gravity.sandbox.records import Fault
from gravity.sandbox.store import Store


class Faults:
    """The faults still to happen, taken first come first served; never saved to the state file."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.pending: list[Fault] = []

    def add(self, endpoint: str, kind: str, count: int, delay_s: float | None, oid: str | None) -> None:
        if endpoint not in C.FAULT_ENDPOINTS:
            raise ApiError(400, f"unknown endpoint {endpoint!r}; one of {', '.join(C.FAULT_ENDPOINTS)}")
        if kind not in C.FAULT_KINDS:
            raise ApiError(400, f"unknown fault kind {kind!r}; one of {', '.join(C.FAULT_KINDS)}")
        if kind == "404" and endpoint not in C.NOT_FOUND_FAULT_ENDPOINTS:
            raise ApiError(400, f"a 404 fault applies only to {', '.join(C.NOT_FOUND_FAULT_ENDPOINTS)}")
        if count < 1:
            raise ApiError(400, "count must be at least 1")
        with self._store.lock:
            self.pending.append(Fault(endpoint, kind, count, float(delay_s or C.DEFAULT_SLOW_SECONDS), oid))

    def take(self, endpoint: str, oid: str) -> Fault | None:
        """The fault this call of `endpoint` for `oid` suffers, if any (one fewer left to happen)."""
        with self._store.lock:
            for fault in self.pending:
                if fault.endpoint == endpoint and fault.remaining > 0 and fault.oid in (None, oid):
                    fault.remaining -= 1
                    taken = Fault(**asdict(fault))
                    self.pending = [f for f in self.pending if f.remaining > 0]
                    return taken
            return None

    def clear(self) -> None:
        with self._store.lock:
            self.pending = []

    def listed(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [asdict(f) for f in self.pending]
