"""The book of committed transactions, found by merchant and external id or by uniqueTransId."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from gravity import conventions as C
from gravity.sandbox.batches import Batches
from gravity.sandbox.clock import SandboxClock
from gravity.sandbox.errors import ApiError
from gravity.sandbox.records import Txn
from gravity.sandbox.store import Store
from gravity.sandbox.wire import reconciliation_row


def _key(oid: str, external_id: str) -> str:
    return f"{oid}|{external_id}"


class TransactionBook:
    """Every transaction, keyed `oid|externalTransactionId`, with an index by uniqueTransId."""

    def __init__(self, store: Store, clock: SandboxClock, batches: Batches) -> None:
        self._store = store
        self._clock = clock
        self._batches = batches
        self._held_elsewhere: list[Callable[[str], bool]] = []
        self.txns: dict[str, Txn] = {}  # key: oid|externalTransactionId
        self.by_unique: dict[str, str] = {}  # uniqueTransId -> txn key

    def also_held_by(self, holds: Callable[[str], bool]) -> None:
        """Treat an `oid|externalTransactionId` key `holds` says is taken as used (a waiting terminal session)."""
        self._held_elsewhere.append(holds)

    def check_new_external_id(self, oid: str, external_id: str) -> None:
        """400 for an external id a transaction, or a session about to make one, already uses."""
        key = _key(oid, external_id)
        if key in self.txns or any(holds(key) for holds in self._held_elsewhere):
            raise ApiError(400, C.REUSED_EXTERNAL_ID_MESSAGE)

    def new(self, oid: str, external_id: str, transaction_type: str, **values: Any) -> Txn:
        """Commit a transaction; an approval gets an approval number and joins the open batch."""
        approved = values.get("status", "approved") in ("approved", "partial")
        txn = Txn(
            oid=oid,
            external_id=external_id,
            unique_trans_id=uuid.uuid4().hex,
            transaction_type=transaction_type,
            created_at=self._clock.now().isoformat(),
            approval_number=f"{secrets.randbelow(1_000_000):06d}" if approved else None,
            batch_number=self._batches.current(oid) if approved else None,
            **values,
        )
        key = _key(oid, external_id)
        self.txns[key] = txn
        self.by_unique[txn.unique_trans_id] = key
        return txn

    def find(self, oid: str, external_id: str) -> Txn | None:
        return self.txns.get(_key(oid, external_id))

    def by_unique_id(self, unique_trans_id: str | None) -> Txn | None:
        """The transaction with that uniqueTransId, whatever its merchant."""
        key = self.by_unique.get(unique_trans_id or "")
        return self.txns.get(key) if key else None

    def of_merchant(self, oid: str, unique_trans_id: str | None) -> Txn:
        """`oid`'s transaction with that uniqueTransId; 400 as Gravity answers an unknown one."""
        txn = self.by_unique_id(unique_trans_id)
        if txn is None or txn.oid != oid:
            raise ApiError(400, C.UNKNOWN_UNIQUE_TRANS_ID_MESSAGE)
        return txn

    def in_batch(self, oid: str, number: int) -> list[Txn]:
        return [t for t in self.txns.values() if t.oid == oid and t.batch_number == number]

    def rows(self, oid: str | None = None) -> list[dict[str, Any]]:
        """Every committed transaction, for reconciling a ledger against the gateway to the cent."""
        with self._store.lock:
            return [reconciliation_row(txn) for txn in sorted(self.txns.values(), key=lambda t: t.created_at) if not oid or txn.oid == oid]

    def clear(self) -> None:
        self.txns = {}
        self.by_unique = {}

    def dump(self) -> dict[str, Any]:
        return {"txns": {k: asdict(v) for k, v in self.txns.items()}}

    def load(self, data: Mapping[str, Any]) -> None:
        self.txns = {k: Txn(**v) for k, v in data.get("txns", {}).items()}
        self.by_unique = {t.unique_trans_id: k for k, t in self.txns.items()}
