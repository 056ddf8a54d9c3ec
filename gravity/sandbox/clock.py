"""The sandbox clock: real UTC time plus an offset tests can move, so a void window can pass at once;
or, for a request that says what time its caller lives in (the demo's simulated year), that time."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import pendulum

from gravity.sandbox.store import Store

# Set per request from the `X-Sandbox-Clock` header (`gravity.client.SANDBOX_CLOCK_HEADER`).
CALLERS_TIME: ContextVar[pendulum.DateTime | None] = ContextVar("sandbox_callers_time", default=None)


def instant(text: str) -> pendulum.DateTime:
    """A time the sandbox wrote with `isoformat()`, read back."""
    parsed = pendulum.parse(text)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"not a date and time: {text!r}")
    return parsed


class SandboxClock:
    """`now()` for every rule of the sandbox; the offset is kept in the state file."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.offset_s = 0.0

    def now(self) -> pendulum.DateTime:
        """The caller's time if the request gave one, else real UTC time plus an offset tests can advance."""
        told = CALLERS_TIME.get()
        if told is not None:
            return told
        return pendulum.now("UTC").add(seconds=self.offset_s)

    def advance(self, seconds: float) -> pendulum.DateTime:
        with self._store.lock:
            self.offset_s += float(seconds)
            self._store.save()
            return self.now()

    def set_offset(self, seconds: float) -> pendulum.DateTime:
        with self._store.lock:
            self.offset_s = float(seconds)
            self._store.save()
            return self.now()

    def clear(self) -> None:
        self.offset_s = 0.0

    def dump(self) -> dict[str, Any]:
        return {"clock_offset_s": self.offset_s}

    def load(self, data: Mapping[str, Any]) -> None:
        self.offset_s = float(data.get("clock_offset_s", 0.0))
