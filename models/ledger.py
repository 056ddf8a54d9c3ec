"""The double-entry ledger's tables and chart of accounts: every movement of money is a transaction
whose entries sum to zero.

Debits are positive, credits negative. The database refuses an unbalanced transaction at commit (a
deferred constraint trigger, see the migration), so no code path can leave the books off by a cent.
Each transaction has a unique `reference` (the business event it records); posting lives in
`books.ledger`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Text
from sqlmodel import Field, SQLModel

from models.columns import fk, tz


class Account(StrEnum):
    """The chart of accounts. Names are stable strings stored in the ledger."""

    RECEIVABLE = "accounts_receivable"  # asset: what clients owe on invoices
    GATEWAY_CLEARING = "gateway_clearing"  # asset: card money held by Gravity until payout
    CLIENT_CREDIT = "client_credit"  # liability: deposits not yet applied
    DEFERRED_REVENUE = "deferred_revenue"  # liability: yearly plan fees billed but not yet earned
    TIPS_PAYABLE = "tips_payable"  # liability: tips added at the terminal, owed to the staff
    PLAN_REVENUE = "plan_revenue"  # income: health-plan fees
    FEE_REVENUE = "fee_revenue"  # income: enrollment fees, settlements, counter sales
    REFUNDS = "refunds"  # contra-income: money given back


class LedgerTransaction(SQLModel, table=True):
    __tablename__ = "ledger_transaction"
    # A location's day of postings (the journal export), and an invoice's postings of one kind
    # (the months of deferred revenue recognized so far).
    __table_args__ = (
        Index("ix_ledger_transaction_location_created", "location_id", "created_at"),
        Index("ix_ledger_transaction_invoice_kind", "invoice_id", "kind"),
    )
    id: int | None = Field(default=None, sa_column=Column("id", BigInteger, primary_key=True, autoincrement=True))
    reference: str = Field(sa_column=Column("reference", Text, nullable=False, unique=True))
    kind: str
    memo: str = ""
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    client_id: str | None = Field(default=None, sa_column=fk("client_id", "client.id", nullable=True))
    invoice_id: str | None = Field(default=None, sa_column=fk("invoice_id", "invoice.id", nullable=True))
    payment_id: str | None = Field(default=None, sa_column=fk("payment_id", "payment.id", nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (CheckConstraint("amount_cents <> 0", name="ck_ledger_entry_nonzero"),)
    id: int | None = Field(default=None, sa_column=Column("id", BigInteger, primary_key=True, autoincrement=True))
    transaction_id: int = Field(
        sa_column=Column("transaction_id", BigInteger, ForeignKey("ledger_transaction.id", ondelete="RESTRICT"), nullable=False, index=True)
    )
    account: str = Field(sa_column=Column("account", Text, nullable=False, index=True))
    amount_cents: int = Field(sa_column=Column("amount_cents", BigInteger, nullable=False))
