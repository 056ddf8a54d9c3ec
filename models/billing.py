"""Invoices, payments, refunds and client credit: the money rows.

Double charging and double invoicing are made impossible here, in the database:
- a subscription cycle's invoice has a unique `cycle_key` (subscription and period start);
- every attempt to move money has a unique `external_transaction_id` (the deterministic id also sent
  to Gravity) and a unique human-readable `attempt_key` it was derived from;
- amounts are non-negative cents; refunds and credit applications reference what they draw from.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, Date, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus
from models.columns import cents, fk, tz

INVOICE_STATUSES = tuple(InvoiceStatus)
PAYMENT_STATUSES = tuple(PaymentStatus)


class Invoice(SQLModel, table=True):
    __tablename__ = "invoice"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'paid', 'void')", name="ck_invoice_status"),
        CheckConstraint("kind IN ('subscription', 'counter', 'settlement', 'proration')", name="ck_invoice_kind"),
        CheckConstraint("paid_cents <= total_cents", name="ck_invoice_not_overpaid"),
        CheckConstraint("(kind = 'subscription') = (cycle_key IS NOT NULL)", name="ck_invoice_cycle_key"),
    )
    id: str = Field(primary_key=True)
    number: str = Field(sa_column=Column("number", Text, nullable=False, unique=True))
    kind: str = "counter"
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    subscription_id: str | None = Field(default=None, sa_column=fk("subscription_id", "subscription.id", nullable=True))
    cycle_key: str | None = Field(default=None, sa_column=Column("cycle_key", Text, nullable=True, unique=True))
    period_start: date | None = Field(default=None, sa_column=Column("period_start", Date, nullable=True))
    period_end: date | None = Field(default=None, sa_column=Column("period_end", Date, nullable=True))
    status: str = Field(default=InvoiceStatus.OPEN, sa_column=Column("status", Text, nullable=False, index=True))
    total_cents: int = Field(default=0, sa_column=cents("total_cents", default=0))
    paid_cents: int = Field(default=0, sa_column=cents("paid_cents", default=0))
    due_at: datetime | None = Field(default=None, sa_column=tz("due_at", nullable=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=tz("next_attempt_at", nullable=True))
    # Set when a cancellation starts: the invoice then takes no new collection, whatever the saga waits for.
    cancel_requested_at: datetime | None = Field(default=None, sa_column=tz("cancel_requested_at", nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    updated_at: datetime | None = Field(default=None, sa_column=tz("updated_at", now_default=True))


class InvoiceLine(SQLModel, table=True):
    __tablename__ = "invoice_line"
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(sa_column=fk("invoice_id", "invoice.id"))
    kind: str = Field(description="plan_fee, enrollment_fee, proration, settlement, service")
    description: str
    amount_cents: int = Field(sa_column=cents("amount_cents"))


class Payment(SQLModel, table=True):
    """One attempt to take money: a card-on-file charge, a terminal sale, or applied client credit.

    Declined and unknown attempts are rows too: they are the dunning history finance reads.
    `amount_cents` is what was asked, `approved_cents` what the gateway approved: it may be more
    (a tip or surcharge at the terminal), because what the gateway did is booked as it happened.
    """

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in PAYMENT_STATUSES) + ")", name="ck_payment_status"),
        CheckConstraint("method IN ('card_on_file', 'terminal', 'credit')", name="ck_payment_method"),
        CheckConstraint("refunded_cents <= approved_cents", name="ck_payment_refunded_le_approved"),
        Index("ix_payment_invoice_status", "invoice_id", "status"),
        Index("ix_payment_card_attempted", "card_id", "attempted_at"),
        Index("ix_payment_location_settled", "location_id", "settled_at"),
    )
    id: str = Field(primary_key=True)
    external_transaction_id: str = Field(sa_column=Column("external_transaction_id", Text, nullable=False, unique=True))
    attempt_key: str = Field(sa_column=Column("attempt_key", Text, nullable=False, unique=True))
    invoice_id: str | None = Field(default=None, sa_column=fk("invoice_id", "invoice.id", nullable=True))
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    subscription_id: str | None = Field(default=None, sa_column=fk("subscription_id", "subscription.id", nullable=True))
    card_id: str | None = Field(default=None, sa_column=fk("card_id", "saved_card.id", nullable=True))
    method: str
    purpose: str = Field(default="invoice", description="invoice or deposit")
    attempt: int = Field(default=1, sa_column=Column("attempt", Integer, CheckConstraint("attempt >= 1", name="ck_payment_attempt"), nullable=False))
    status: str = Field(default=PaymentStatus.PENDING, sa_column=Column("status", Text, nullable=False))
    amount_cents: int = Field(sa_column=cents("amount_cents"))
    approved_cents: int = Field(default=0, sa_column=cents("approved_cents", default=0))
    refunded_cents: int = Field(default=0, sa_column=cents("refunded_cents", default=0))
    tip_cents: int = Field(default=0, sa_column=cents("tip_cents", default=0))
    surcharge_cents: int = Field(default=0, sa_column=cents("surcharge_cents", default=0))
    gateway_facts: dict[str, Any] | None = Field(default=None, sa_column=Column("gateway_facts", JSONB, nullable=True))
    attempted_at: datetime | None = Field(default=None, sa_column=tz("attempted_at", nullable=True))
    decline_reason: str | None = None
    decline_class: str | None = None
    result_message: str | None = None
    gravity_unique_trans_id: str | None = None
    masked_number: str | None = None
    brand: str | None = None
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    updated_at: datetime | None = Field(default=None, sa_column=tz("updated_at", now_default=True))
    settled_at: datetime | None = Field(default=None, sa_column=tz("settled_at", nullable=True))  # when it became final


class Refund(SQLModel, table=True):
    """Money given back on a payment: a void (before settlement) or a tokenized refund. A credit note."""

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("kind IN ('void', 'refund')", name="ck_refund_kind"),
        CheckConstraint("status IN ('pending', 'done', 'failed', 'unknown')", name="ck_refund_status"),
        CheckConstraint("amount_cents > 0", name="ck_refund_positive"),
        CheckConstraint("credit_cents <= amount_cents", name="ck_refund_credit_le_amount"),
        Index("ix_refund_settled", "settled_at"),
    )
    id: str = Field(primary_key=True)
    external_transaction_id: str = Field(sa_column=Column("external_transaction_id", Text, nullable=False, unique=True))
    attempt_key: str = Field(sa_column=Column("attempt_key", Text, nullable=False, unique=True))
    payment_id: str = Field(sa_column=fk("payment_id", "payment.id"))
    invoice_id: str | None = Field(default=None, sa_column=fk("invoice_id", "invoice.id", nullable=True))
    kind: str
    status: str = Field(default=RefundStatus.PENDING, sa_column=Column("status", Text, nullable=False))
    amount_cents: int = Field(sa_column=cents("amount_cents"))
    # The part of this refund that gives back client credit (`deposit_id`'s), reserved when the
    # refund starts so the same credit can be neither spent nor refunded twice.
    credit_cents: int = Field(default=0, sa_column=cents("credit_cents", default=0))
    deposit_id: str | None = Field(default=None, sa_column=fk("deposit_id", "deposit.id", nullable=True))
    reason: str = ""
    gravity_unique_trans_id: str | None = None
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    settled_at: datetime | None = Field(default=None, sa_column=tz("settled_at", nullable=True))  # when it became final


class Deposit(SQLModel, table=True):
    """Client credit: a liability until applied to invoices or refunded. `source` says where it came
    from: a prepayment, the part of an approval no invoice needed (an overpayment), or a downgrade."""

    __tablename__ = "deposit"
    __table_args__ = (
        CheckConstraint("remaining_cents <= amount_cents", name="ck_deposit_remaining_le_amount"),
        CheckConstraint("status IN ('held', 'used', 'refunded', 'returning')", name="ck_deposit_status"),
        CheckConstraint("source IN ('deposit', 'overpayment', 'proration')", name="ck_deposit_source"),
    )
    id: str = Field(primary_key=True)
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    payment_id: str | None = Field(default=None, sa_column=fk("payment_id", "payment.id", nullable=True))
    amount_cents: int = Field(sa_column=cents("amount_cents"))
    remaining_cents: int = Field(sa_column=cents("remaining_cents"))
    status: str = DepositStatus.HELD
    source: str = Field(default="deposit", sa_column=Column("source", Text, nullable=False, server_default="deposit"))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))


class CreditApplication(SQLModel, table=True):
    """Part of a deposit applied to an invoice (oldest deposit first)."""

    __tablename__ = "credit_application"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="ck_credit_application_positive"),)
    id: int | None = Field(default=None, primary_key=True)
    deposit_id: str = Field(sa_column=fk("deposit_id", "deposit.id"))
    invoice_id: str = Field(sa_column=fk("invoice_id", "invoice.id"))
    amount_cents: int = Field(sa_column=cents("amount_cents"))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
