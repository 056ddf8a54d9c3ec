"""The status enums and the database's CHECK constraints name the same values: a status the code
writes is one the database accepts, and every value a row can hold is a member."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint
from sqlmodel import SQLModel

from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from models.billing import Deposit, Invoice, Payment, Refund
from models.subscriptions import Subscription


def _allowed(table: type[SQLModel], name: str) -> set[str]:
    (check,) = [c for c in table.__table__.constraints if isinstance(c, CheckConstraint) and c.name == name]  # type: ignore[attr-defined]  # SQLModel sets __table__ on table classes
    return set(re.findall(r"'([a-z_]+)'", str(check.sqltext)))


@pytest.mark.parametrize(
    ("statuses", "table", "check"),
    [
        (PaymentStatus, Payment, "ck_payment_status"),
        (InvoiceStatus, Invoice, "ck_invoice_status"),
        (RefundStatus, Refund, "ck_refund_status"),
        (DepositStatus, Deposit, "ck_deposit_status"),
        (SubscriptionStatus, Subscription, "ck_subscription_status"),
    ],
)
def test_enum_and_check_agree(statuses: type[StrEnum], table: type[SQLModel], check: str) -> None:
    assert {str(member) for member in statuses} == _allowed(table, check)


def test_a_status_is_its_string() -> None:
    """What keeps rows, payloads and histories unchanged: equal, same hash, same text."""
    assert PaymentStatus.APPROVED == "approved" and hash(PaymentStatus.APPROVED) == hash("approved")
    assert f"{PaymentStatus.APPROVED}" == str(PaymentStatus.APPROVED) == "approved"
    assert {"approved": 1}[PaymentStatus.APPROVED] == 1
