"""Posting to the double-entry ledger (its tables are `models.ledger`).

Each transaction has a unique `reference` (the business event it records), which makes posting
idempotent: an activity that retries posts nothing twice.
"""

from __future__ import annotations

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from models.billing import Invoice
from models.ledger import Account, LedgerEntry, LedgerTransaction
from models.stamp import stamp_of


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
        "reference": reference,
        "kind": kind,
        "memo": memo,
        "location_id": location_id,
        "client_id": client_id,
        "invoice_id": invoice_id,
        "payment_id": payment_id,
    }
    at = stamp_of(session)
    if not entries:
        dated = header if at is None else {**header, "created_at": at}
        statement = insert(LedgerTransaction).values(**dated).on_conflict_do_nothing(index_elements=["reference"]).returning(LedgerTransaction.id)
        inserted = session.execute(statement).scalar_one_or_none()
        return None if inserted is None else int(inserted)
    lines = {"accounts": [str(account) for account, _ in entries], "amounts": [amount for _, amount in entries]}
    inserted = session.execute(_POST_WITH_ENTRIES, {**header, **lines, "created_at": at}).scalars().first()
    return None if inserted is None else int(inserted)


# The entries travel as two arrays (unnest), so that the statement's text is the same for any number
# of lines and SQLAlchemy compiles it once per process instead of on every posting.
_POST_WITH_ENTRIES = text(
    "WITH posted AS ("
    " INSERT INTO ledger_transaction (reference, kind, memo, location_id, client_id, invoice_id, payment_id, created_at)"
    " VALUES (:reference, :kind, :memo, :location_id, :client_id, :invoice_id, :payment_id, COALESCE(CAST(:created_at AS timestamptz), now()))"
    " ON CONFLICT (reference) DO NOTHING RETURNING id)"
    " INSERT INTO ledger_entry (transaction_id, account, amount_cents)"
    " SELECT posted.id, lines.account, lines.amount_cents"
    " FROM posted CROSS JOIN unnest(CAST(:accounts AS text[]), CAST(:amounts AS bigint[])) AS lines (account, amount_cents)"
    " RETURNING transaction_id"
)


def post_for_invoice(
    session: Session,
    invoice: Invoice,
    *,
    reference: str,
    kind: str,
    entries: list[tuple[Account, int]],
    memo: str = "",
    payment_id: str | None = None,
) -> int | None:
    """`post` of a movement on one invoice, filed under its location, client and id, because most
    postings are and spelling the three out each time invites one taken from the wrong row."""
    return post(
        session,
        reference=reference,
        kind=kind,
        location_id=invoice.location_id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        payment_id=payment_id,
        memo=memo,
        entries=entries,
    )


def posted(session: Session, reference: str) -> LedgerTransaction | None:
    """The transaction posted under `reference`, if any: what makes a step that posts idempotent."""
    return session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == reference)).first()


def entries_of(session: Session, transaction: LedgerTransaction) -> list[LedgerEntry]:
    """The entries of one posted transaction."""
    return list(session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id == transaction.id)).all())


def split_pro_rata(amount_cents: int, weights: dict[Account, int]) -> dict[Account, int]:
    """`amount_cents` shared across accounts in proportion to `weights`, to the cent (largest
    remainders get the leftover cents, ties by account name, so the split is deterministic)."""
    total = sum(weights.values())
    if total <= 0 or amount_cents == 0:
        return {}
    shares = {account: amount_cents * weight // total for account, weight in weights.items()}
    leftover = amount_cents - sum(shares.values())
    by_remainder = sorted(weights, key=lambda a: (-(amount_cents * weights[a] % total), str(a)))
    for account in by_remainder[:leftover]:
        shares[account] += 1
    return {account: cents for account, cents in shares.items() if cents}


def account_balances(session: Session) -> dict[str, int]:
    """Sum of every account across the whole ledger (debits positive)."""
    rows = session.exec(select(LedgerEntry.account, func.sum(LedgerEntry.amount_cents)).group_by(LedgerEntry.account)).all()
    return {account: int(total) for account, total in rows}


def is_balanced(session: Session) -> bool:
    """True when every posted transaction sums to zero (the whole ledger then does too)."""
    unbalanced = session.exec(select(LedgerEntry.transaction_id).group_by(LedgerEntry.transaction_id).having(func.sum(LedgerEntry.amount_cents) != 0)).first()
    return unbalanced is None
