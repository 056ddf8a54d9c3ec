"""The one lock every change of the sandbox takes, and the JSON file each finished change is saved to.

Why one lock for every part: a request often changes several (a sale touches the card, the book of
transactions and the batch), and concurrent requests and the control surface must see each change
whole. The file is written to a temporary name and renamed, so a restart finds the last whole state.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

#: When the state file is written: after every change (`billing up`'s sandbox), once when the
#: sandbox stops (the demo's: a long run would rewrite a growing file per request), or never
#: (a read-only look at a kept state).
SaveWhen = Literal["change", "stop", "never"]


class Persisted(Protocol):
    """A part of the state kept in the file under its own top-level keys."""

    def dump(self) -> dict[str, Any]: ...

    def load(self, data: Mapping[str, Any]) -> None: ...


class Store:
    """The lock, and the optional state file the registered parts are saved to and restored from."""

    def __init__(self, state_file: str | Path | None, *, save: SaveWhen = "change") -> None:
        self.lock = threading.RLock()
        self._path = Path(state_file) if state_file else None
        self._save_when = save
        self._parts: list[Persisted] = []
        self._deferred = False

    def keep(self, *parts: Persisted) -> None:
        """Save `parts` with every change and restore them at start."""
        self._parts.extend(parts)

    def save(self) -> None:
        """Write every kept part to the file after a change (call with the lock held)."""
        if self._save_when == "change" and not self._deferred:
            self._write()

    def stopped(self) -> None:
        """Write the file once as the sandbox stops, when it is kept that way."""
        if self._save_when == "stop":
            with self.lock:
                self._write()

    def _write(self) -> None:
        if self._path is None:
            return
        data: dict[str, Any] = {}
        for part in self._parts:
            data.update(part.dump())
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self._path)

    def restore(self) -> None:
        """Load every kept part from the file, if there is one."""
        if self._path is None or not self._path.exists():
            return
        data = json.loads(self._path.read_text())
        for part in self._parts:
            part.load(data)

    @contextmanager
    def saved_once(self) -> Iterator[None]:
        """The changes made inside are saved once at the end, not one by one (nothing if they fail)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False
        self.save()
