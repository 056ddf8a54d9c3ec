"""Typed results of Gravity calls: what the engine reads, never raw dicts.

Amounts are integer cents; the dollar strings Gravity sends are parsed only through
`foundation.money`, so there is exactly one conversion in the code base.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from foundation.money import from_optional_dollar_string
from gravity.conventions import (
    APPROVED_MESSAGE,
    PARTIAL_MESSAGE,
    DeclineClass,
    DeclineReason,
    classify_decline,
    match_decline,
)

__all__ = [
    "BulkSale",
    "DeclineClass",
    "DeclineReason",
    "Device",
    "Outcome",
    "TransactionResult",
    "TransactionType",
    "parse_transaction",
]


class Outcome(StrEnum):
    """The business outcome: a decline is a result like an approval, not an error."""

    APPROVED = "approved"
    DECLINED = "declined"
    PARTIAL = "partial"


class TransactionType(StrEnum):
    """Gravity's `transactionType` values we meet."""

    CREDIT_SALE = "CreditSale"
    CREDIT_RETURN = "CreditReturn"
    VOID = "Void"
    CREDIT_SAVE_CARD = "CreditSaveCard"


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """One transaction as Gravity reports it (sync answer, lookup or postback).

    Holds no card number, security code or card token other than `unique_trans_id`, so every field
    may be stored (see `facts`). `approved_cents` is what was taken, tip and surcharge included; when
    an approval stated no amount at all it is 0 and `amount_stated` is False: book the requested
    amount then, never 0 (a 0 would be charged again).
    """

    outcome: Outcome
    external_transaction_id: str
    unique_trans_id: str | None
    transaction_type: TransactionType | str
    amount_cents: int | None
    approved_cents: int
    balance_cents: int | None
    decline_reason: DeclineReason | None
    decline_class: DeclineClass | None
    result_message: str
    masked_account: str | None
    card_brand: str | None
    expiry_mmyy: str | None
    fingerprint: str | None
    entry_method: str | None
    batch_number: str | None
    reference: str | None
    approval_number: str | None = None
    amount_stated: bool = True
    tip_cents: int = 0
    surcharge_cents: int = 0
    avs_response_code: str | None = None
    avs_response_text: str | None = None
    cvv_response_code: str | None = None
    cvv_response_text: str | None = None
    cashier: str | None = None
    billing_name: str | None = None
    transaction_date: str | None = None
    decline_known: bool = True  # False: the decline's text is in no table row (read as soft, reported)

    def facts(self) -> dict[str, object]:
        """Every field Gravity reported, as JSON-ready values (a field it left out is omitted; tip and
        surcharge read as 0), so the books can keep the gateway's own account beside ours."""
        found = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: _plain(value) for name, value in found if value is not None}

    @property
    def approved(self) -> bool:
        """True for a full or a partial approval (money moved)."""
        return self.outcome is not Outcome.DECLINED

    @property
    def card_ref(self) -> str | None:
        """The saved-card token this result gives: Gravity's token *is* an approved uniqueTransId."""
        return self.unique_trans_id if self.approved else None


@dataclass(frozen=True, slots=True)
class Device:
    """A card-present terminal of one location, as `list_devices` reports it."""

    name: str
    online: bool
    busy: bool


@dataclass(frozen=True, slots=True)
class BulkSale:
    """One card-on-file sale of a bulk run (results arrive only by postback)."""

    card_ref: str
    amount_cents: int
    external_id: str
    reference: str | None = None
    billing_name: str | None = None


def _plain(value: object) -> object:
    """An enum as its string; str, int and bool as they are (all JSON-ready)."""
    return str(value) if isinstance(value, StrEnum) else value


def _masked(value: str | None) -> str | None:
    """A masked account as reported, but never more than six leading and four trailing digits: if a
    gateway ever sent a full number, only its last four survive."""
    if value is None or sum(c.isdigit() for c in value) <= 10:
        return value
    return "*" * (len(value) - 4) + value[-4:]


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _truthy(value: Any) -> bool:
    """Gravity sends booleans as the strings "true"/"false"; accept real booleans too."""
    if isinstance(value, bool):
        return value
    return str(value).strip().casefold() == "true"


def parse_transaction(data: Mapping[str, Any]) -> TransactionResult:
    """Build a result from a `transactionResponse` (or a flat postback) object.

    Raises `ValueError` (a `MoneyError`) if a money field is not a dollar string: a malformed
    answer must never be read as some other amount.
    """
    approved = _truthy(data.get("resultStatus"))
    message = _text(data, "resultMessage") or ""
    amount = from_optional_dollar_string(data.get("amount"))
    processed = from_optional_dollar_string(data.get("amountProcessed"))
    balance = from_optional_dollar_string(data.get("amountBalance"))
    tip = from_optional_dollar_string(data.get("amountTipped")) or 0
    surcharge = from_optional_dollar_string(data.get("amountTaxed")) or 0
    partial = approved and (_truthy(data.get("isPartialApproval")) or message.casefold() == PARTIAL_MESSAGE.casefold())
    reason = decline_class = None
    known = True
    if not approved:
        outcome = Outcome.DECLINED
        reason, decline_class = classify_decline(message)
        known = match_decline(message) is not None
        taken: int | None = 0
    elif partial:
        outcome = Outcome.PARTIAL
        taken = _partly_taken(processed, amount, balance)
        if balance is None and amount is not None and taken is not None:
            balance = amount - taken
    else:
        outcome = Outcome.APPROVED
        taken = _fully_taken(processed, amount, tip + surcharge)
    raw_type = _text(data, "transactionType") or ""
    try:
        transaction_type: TransactionType | str = TransactionType(raw_type)
    except ValueError:
        transaction_type = raw_type
    return TransactionResult(
        outcome=outcome,
        external_transaction_id=_text(data, "externalTransactionId") or "",
        unique_trans_id=_text(data, "uniqueTransId"),
        transaction_type=transaction_type,
        amount_cents=amount,
        approved_cents=taken or 0,
        balance_cents=balance if outcome is Outcome.PARTIAL else None,
        decline_reason=reason,
        decline_class=decline_class,
        decline_known=known,
        result_message=message or (APPROVED_MESSAGE if approved else ""),
        masked_account=_masked(_text(data, "maskedAccount")),
        card_brand=_text(data, "accountCardType"),
        expiry_mmyy=_text(data, "accountExpiryDate"),
        fingerprint=_text(data, "accountFingerprint"),
        entry_method=_text(data, "accountEntryMethod"),
        batch_number=_text(data, "batchNumber"),
        reference=_text(data, "transactionReference"),
        approval_number=_text(data, "approvalNumberResult"),
        amount_stated=taken is not None,
        tip_cents=tip,
        surcharge_cents=surcharge,
        avs_response_code=_text(data, "avsResponseCode"),
        avs_response_text=_text(data, "avsResponseText"),
        cvv_response_code=_text(data, "cvvResponseCode"),
        cvv_response_text=_text(data, "cvvResponseText"),
        cashier=_text(data, "cashier"),
        billing_name=_text(data, "billingName"),
        transaction_date=_text(data, "transactionDate"),
    )


def _fully_taken(processed: int | None, amount: int | None, extra: int) -> int | None:
    """What a full approval took: amountProcessed, else the amount plus tip and surcharge, else unknown."""
    if processed is not None:
        return processed
    return amount + extra if amount is not None else None


def _partly_taken(processed: int | None, amount: int | None, balance: int | None) -> int | None:
    """What a partial approval took: amountProcessed, else amount minus amountBalance, else unknown."""
    if processed is not None:
        return processed
    if amount is not None and balance is not None:
        return amount - balance
    return None
