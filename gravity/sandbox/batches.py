"""Each merchant's open batch: an approval joins it, and settling closes it and opens the next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gravity.sandbox.merchants import Merchants


class Batches:
    """Batch numbers per OID, starting at 1."""

    def __init__(self, merchants: Merchants) -> None:
        self._merchants = merchants
        self.open: dict[str, int] = {}
        self.clear()

    def current(self, oid: str) -> int:
        """The number of `oid`'s open batch."""
        return self.open[oid]

    def close(self, oid: str) -> int:
        """Close `oid`'s open batch and open the next; the closed batch's number."""
        number = self.open[oid]
        self.open[oid] = number + 1
        return number

    def clear(self) -> None:
        self.open = dict.fromkeys(self._merchants, 1)

    def dump(self) -> dict[str, Any]:
        return {"batches": self.open}

    def load(self, data: Mapping[str, Any]) -> None:
        for oid, number in data.get("batches", {}).items():
            if oid in self._merchants:
                self.open[oid] = int(number)
