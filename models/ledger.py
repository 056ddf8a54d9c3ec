"""The double-entry ledger: every movement of money is a transaction whose entries sum to zero.

Debits are positive, credits negative. The database refuses an unbalanced transaction at commit (a
deferred constraint trigger, see the migration), so no code path can leave the books off by a cent.
Each transaction has a unique `reference` (the business event it records), which makes posting
idempotent: an activity that retries posts nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Text, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, Session, SQLModel, select

from models.columns import fk, tz


class Account(StrEnum):
    """The chart of accounts. Names are stable strings stored in the ledger."""

    RECEIVABLE = "accounts_receivable"  # asset: what clients owe on invoices
    GATEWAY_CLEARING = "gateway_clearing"  # asset: card money held by Gravity until payout
    CLIENT_CREDIT = "client_credit"  # liability: deposits not yet applied
    TIPS_PAYABLE = "tips_payable"  # liability: tips added at the terminal, owed to the staff
    PLAN_REVENUE = "plan_revenue"  # income: health-plan fees
    FEE_REVENUE = "fee_revenue"  # income: enrollment fees, settlements, counter sales
    REFUNDS = "refunds"  # contra-income: money given back


class LedgerTransaction(SQLModel, table=True):
    __tablename__ = "ledger_transaction"
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
    transaction_id: int = Field(sa_column=Column("transaction_id", BigInteger, ForeignKey("ledger_transaction.id", ondelete="RESTRICT"), nullable=False, index=True))
    account: str = Field(sa_column=Column("account", Text, nullable=False, index=True))
    amount_cents: int = Field(sa_column=Column("amount_cents", BigInteger, nullable=False))


class UnbalancedTransaction(ValueError):
    """Entries that do not sum to zero, refused before they reach the database."""


def post(
    session: Session,
    *,
    reference: str,
    kind: str,
    location_id: str,
    entries: list[tuple[Account, int]],
    memo: str = "",
    client_id: str | None = None,
    invoice_id: str | None = None,
    payment_id: str | None = None,
) -> int | None:
    """Post one balanced transaction under `reference`; returns its id, or None when a transaction
    with that reference was already posted (a retried activity posts nothing twice).

    Call inside the same database transaction as the change it records. One statement: the
    transaction row (INSERT ... ON CONFLICT DO NOTHING) in a CTE feeding the INSERT of its entries,
    so a reference already posted inserts neither.
    """
    if sum(amount for _, amount in entries) != 0:
        raise UnbalancedTransaction(f"ledger transaction {reference!r} does not balance: {entries}")
    entries = [(account, amount) for account, amount in entries if amount != 0]
    header = {
        "reference": reference, "kind": kind, "memo": memo, "location_id": location_id,
        "client_id": client_id, "invoice_id": invoice_id, "payment_id": payment_id,
    }
    if not entries:
        statement = insert(LedgerTransaction).values(**header).on_conflict_do_nothing(index_elements=["reference"]).returning(LedgerTransaction.id)
        inserted = session.execute(statement).scalar_one_or_none()
        return None if inserted is None else int(inserted)
    lines = {"accounts": [str(account) for account, _ in entries], "amounts": [amount for _, amount in entries]}
    inserted = session.execute(_POST_WITH_ENTRIES, {**header, **lines}).scalars().first()
    return None if inserted is None else int(inserted)


# The entries travel as two arrays (unnest), so that the statement's text is the same for any number
# of lines and SQLAlchemy compiles it once per process instead of on every posting.
_POST_WITH_ENTRIES = text(
    "WITH posted AS ("
    " INSERT INTO ledger_transaction (reference, kind, memo, location_id, client_id, invoice_id, payment_id)"
    " VALUES (:reference, :kind, :memo, :location_id, :client_id, :invoice_id, :payment_id)"
    " ON CONFLICT (reference) DO NOTHING RETURNING id)"
    " INSERT INTO ledger_entry (transaction_id, account, amount_cents)"
    " SELECT posted.id, lines.account, lines.amount_cents"
    " FROM posted CROSS JOIN unnest(CAST(:accounts AS text[]), CAST(:amounts AS bigint[])) AS lines (account, amount_cents)"
    " RETURNING transaction_id"
)


def account_balances(session: Session) -> dict[str, int]:
    """Sum of every account across the whole ledger (debits positive)."""
    from sqlalchemy import func

    rows = session.exec(
        select(LedgerEntry.account, func.sum(LedgerEntry.amount_cents)).group_by(LedgerEntry.account)
    ).all()
    return {account: int(total) for account, total in rows}


def is_balanced(session: Session) -> bool:
    """True when every posted transaction sums to zero (the whole ledger then does too)."""
    from sqlalchemy import func

    unbalanced = session.exec(
        select(LedgerEntry.transaction_id)
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount_cents) != 0)
    ).first()
    return unbalanced is None
