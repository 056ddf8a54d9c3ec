"""The card vault: saved cards as a gateway keeps them, and how each behaves when charged.

No full card number or security code is kept, in memory or on disk: a card is its masked number,
brand, expiry, fingerprint and scripted behaviour, like a real gateway's vault reference. A card's
token is the uniqueTransId of a transaction that used it, so tokens are found through the book.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from gravity import conventions as C
from gravity.conventions import DeclineReason
from gravity.sandbox.clock import SandboxClock
from gravity.sandbox.errors import ApiError
from gravity.sandbox.records import Card
from gravity.sandbox.store import Store
from gravity.sandbox.transactions import TransactionBook

_FINGERPRINT_SALT = b"vet-billing-sandbox-fingerprint"


class CardVault:
    """Cards by vault id; a token (uniqueTransId) is resolved through the book."""

    def __init__(self, store: Store, clock: SandboxClock, book: TransactionBook) -> None:
        self._store = store
        self._clock = clock
        self._book = book
        self.cards: dict[str, Card] = {}

    def get(self, card_id: str | None) -> Card | None:
        return self.cards.get(card_id or "")

    def save_card(self, number: str, expiry_mmyy: str) -> Card:
        """Keep a card seen at the API or a terminal; only its vault reference stays."""
        fingerprint = hashlib.sha256(_FINGERPRINT_SALT + number.encode()).hexdigest()[:32]
        card = Card(
            card_id=uuid.uuid4().hex,
            masked=C.mask_card(number),
            brand=C.card_brand(number) or "",
            expiry_mmyy=expiry_mmyy,
            fingerprint=fingerprint,
            declines_after_save=number == C.DECLINES_AFTER_SAVE_CARD,
        )
        self.cards[card.card_id] = card
        return card

    def card_of_token(self, oid: str, card_ref: str | None) -> Card:
        """The card behind `oid`'s token; 400 as Gravity answers an unknown one."""
        txn = self._book.of_merchant(oid, card_ref)
        card = self.get(txn.card_id) if txn.is_approved else None
        if card is None:
            raise ApiError(400, C.UNKNOWN_UNIQUE_TRANS_ID_MESSAGE)
        return card

    def behaviour(self, number: str, expiry_mmyy: str) -> str:
        """The resultMessage a card number gets when keyed or tapped (before any scripting)."""
        fixed = C.TEST_CARDS.get(number)
        if fixed is not None and fixed != C.APPROVED_MESSAGE:
            return fixed
        if not C.luhn_ok(number) or C.card_brand(number) is None:
            return C.DECLINE_MESSAGE[DeclineReason.INVALID_ACCOUNT]
        if self.expired(expiry_mmyy):
            return C.DECLINE_MESSAGE[DeclineReason.EXPIRED_CARD]
        return C.APPROVED_MESSAGE

    def expired(self, mmyy: str) -> bool:
        month, year = int(mmyy[:2]), 2000 + int(mmyy[2:])
        now = self._clock.now()
        return (year, month) < (now.year, now.month)

    def sale_outcome(self, card: Card, amount_cents: int) -> tuple[str, str, int]:
        """(status, resultMessage, approved cents) of a card-on-file charge; takes one scripted step."""
        if card.script:
            step = card.script[0]
            step["count"] -= 1
            if step["count"] <= 0:
                card.script.pop(0)
            if step["kind"] == "partial":
                approved = min(int(step["approved_cents"]), amount_cents - 1)
                if approved > 0:
                    return "partial", C.PARTIAL_MESSAGE, approved
                return "declined", C.DECLINE_MESSAGE[DeclineReason.INSUFFICIENT_FUNDS], 0
            return "declined", C.DECLINE_MESSAGE[DeclineReason(step["reason"])], 0
        if card.expired or self.expired(card.expiry_mmyy):
            return "declined", C.DECLINE_MESSAGE[DeclineReason.EXPIRED_CARD], 0
        if card.declines_after_save:
            return "declined", C.DECLINES_AFTER_SAVE_MESSAGE, 0
        return "approved", C.APPROVED_MESSAGE, amount_cents

    def script(self, card_ref: str, step: dict[str, Any]) -> None:
        """Make the card behind a token decline, approve in part or expire (a test's script)."""
        with self._store.lock:
            txn = self._book.by_unique_id(card_ref)
            if txn is None or txn.card_id is None or not txn.is_approved:
                raise ApiError(404, "no saved card with that uniqueTransId")
            card = self.cards[txn.card_id]
            if step["kind"] == "expire":
                card.expired = True
            else:
                card.script.append(step)
            self._store.save()

    def clear(self) -> None:
        self.cards = {}

    def dump(self) -> dict[str, Any]:
        return {"cards": {k: asdict(v) for k, v in self.cards.items()}}

    def load(self, data: Mapping[str, Any]) -> None:
        self.cards = {k: Card(**v) for k, v in data.get("cards", {}).items()}
