"""All the sandbox knows, as one part per concern sharing one lock and one optional state file.

Every public method of a part takes the store's `threading.RLock`, does its work without awaiting
and returns, so concurrent requests (and the control surface) see each change whole. Changes are
saved to the JSON state file, when there is one, so a demo can restart the sandbox.
"""

from __future__ import annotations

from pathlib import Path

from gravity.sandbox.batches import Batches
from gravity.sandbox.clock import SandboxClock
from gravity.sandbox.faults import Faults
from gravity.sandbox.idempotency import IdempotencyKeys
from gravity.sandbox.merchants import Merchants
from gravity.sandbox.payments import CardPayments
from gravity.sandbox.settlement import Settlement
from gravity.sandbox.store import SaveWhen, Store
from gravity.sandbox.terminals import Terminals
from gravity.sandbox.transactions import TransactionBook
from gravity.sandbox.vault import CardVault


class SandboxState:
    """The parts, wired together. Construct once per server; safe to call from any thread."""

    def __init__(
        self,
        oids: dict[str, str],
        *,
        devices: dict[str, list[str]] | None = None,
        state_file: str | Path | None = None,
        save: SaveWhen = "change",
    ) -> None:
        self.store = Store(state_file, save=save)
        self.merchants = Merchants(oids)
        self.clock = SandboxClock(self.store)
        self.keys = IdempotencyKeys(self.store, self.clock)
        self.faults = Faults(self.store)
        self.batches = Batches(self.merchants)
        self.book = TransactionBook(self.store, self.clock, self.batches)
        self.vault = CardVault(self.store, self.clock, self.book)
        self.payments = CardPayments(self.store, self.clock, self.book, self.vault)
        self.terminals = Terminals(self.store, self.clock, self.merchants, self.book, self.vault, devices)
        self.settlement = Settlement(self.store, self.merchants, self.batches, self.book)
        # A session waiting on a device has claimed its external id before its transaction exists.
        self.book.also_held_by(self.terminals.holds)
        self.store.keep(self.clock, self.vault, self.book, self.terminals, self.batches, self.keys)
        self.store.restore()

    def reset(self) -> None:
        """Forget every transaction, card, key, fault and clock offset (merchants and devices stay)."""
        with self.store.lock:
            for part in (self.clock, self.vault, self.book, self.terminals, self.batches, self.keys, self.faults):
                part.clear()
            self.store.save()
