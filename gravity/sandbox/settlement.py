"""Settlement: closing a merchant's open batch, after which its sales can no longer be voided."""

from __future__ import annotations

from typing import Any

from gravity import conventions as C
from gravity.sandbox.batches import Batches
from gravity.sandbox.errors import ApiError
from gravity.sandbox.merchants import Merchants
from gravity.sandbox.store import Store
from gravity.sandbox.transactions import TransactionBook


class Settlement:
    """Closes batches and marks what they held as settled."""

    def __init__(self, store: Store, merchants: Merchants, batches: Batches, book: TransactionBook) -> None:
        self._store = store
        self._merchants = merchants
        self._batches = batches
        self._book = book

    def settle(self, oid: str | None) -> dict[str, Any]:
        """Close the open batch of one OID (or all): its sales can no longer be voided."""
        with self._store.lock:
            closed = {}
            for each in [oid] if oid else list(self._merchants):
                if each not in self._merchants:
                    raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
                number = self._batches.current(each)
                held = self._book.in_batch(each, number)
                for txn in held:
                    txn.settled = True
                self._batches.close(each)
                closed[each] = {"batch_number": number, "transactions": len(held)}
            self._store.save()
            return closed
