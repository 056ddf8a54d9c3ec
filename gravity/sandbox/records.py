"""The sandbox's records, as they are kept in memory and in the state file (no card number among them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


@dataclass
class Card:
    card_id: str
    masked: str
    brand: str
    expiry_mmyy: str
    fingerprint: str
    declines_after_save: bool = False
    expired: bool = False
    script: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Txn:
    oid: str
    external_id: str
    unique_trans_id: str
    transaction_type: str
    status: str  # approved | declined | partial
    result_message: str
    amount_cents: int | None
    approved_cents: int
    created_at: str
    card_id: str | None = None
    entry_method: str | None = None
    batch_number: int | None = None
    settled: bool = False
    reference: str | None = None
    billing_name: str | None = None
    cashier_id: str | None = None
    approval_number: str | None = None
    parent_unique_trans_id: str | None = None
    refunded_cents: int = 0
    voided: bool = False
    source: str = "api"
    tip_cents: int = 0  # above the request, added at the terminal; included in approved_cents
    surcharge_cents: int = 0  # likewise
    avs_code: str = ""  # "" = not checked
    cvv_code: str = ""

    @property
    def is_approved(self) -> bool:
        return self.status in ("approved", "partial")


@dataclass
class TerminalSession:
    """One terminal transaction pushed to a device."""

    oid: str
    device: str
    external_id: str
    amount_cents: int
    transaction_type: str
    reference: str | None
    save_card: bool
    state: str  # waiting | completed | cancelled | abandoned
    created_at: str


class Device(TypedDict):
    """A counter terminal: whether it is on line, and the external id of the session it shows."""

    online: bool
    session: str | None


@dataclass
class Fault:
    endpoint: str
    kind: str
    remaining: int
    delay_s: float
    oid: str | None = None
