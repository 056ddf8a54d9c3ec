"""Issuing invoices: a subscription cycle's (once per cycle key) and one-off ones (the counter, a
settlement, a proration), each with its lines and its ledger posting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from books.attempts import lock_invoice
from books.ledger import post
from foundation.ids import (
    cycle_invoice_number,
    cycle_key,
    event_stream,
    invoice_id_for_cycle,
    invoice_issued_event_key,
    invoice_issued_reference,
    one_off_invoice_number,
    subscription_stream,
)
from foundation.statuses import InvoiceStatus
from models.billing import Invoice, InvoiceLine
from models.ledger import Account
from models.outbox import emit
from models.stamp import stamp_of


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    amount_cents: int
    revenue: Account = Account.PLAN_REVENUE


# Built once (the cycle invoice is on the charge path); the VALUES come from the parameters' names
# (the invoice's columns).
#: The kind of an invoice's issue posting (what the finance report counts as billed).
ISSUED_KIND = "invoice_issued"
_INSERT_CYCLE_INVOICE = insert(Invoice).on_conflict_do_nothing(index_elements=["cycle_key"]).returning(Invoice)
_INSERT_LINES = insert(InvoiceLine.__table__)


def ensure_cycle_invoice(
    session: Session,
    *,
    subscription_id: str,
    client_id: str,
    location_id: str,
    cycle_index: int,
    period_start: date,
    period_end: date,
    due_at: datetime,
    lines: list[LineSpec],
) -> tuple[Invoice, bool]:
    """The invoice of one subscription cycle, locked, and whether this call created it (with its
    lines and ledger posting).

    The UNIQUE `cycle_key` makes a second invoice for the same cycle impossible even if two workers
    race: the loser's INSERT does nothing and it reads (and locks) the winner's row. A row this
    transaction inserted is invisible to every other until commit, so it needs no lock of its own,
    and the INSERT returns it as an ORM object: no second read.
    """
    key = cycle_key(subscription_id, period_start)
    invoice_id = invoice_id_for_cycle(subscription_id, period_start)
    total = sum(line.amount_cents for line in lines)
    values = {
        "id": invoice_id,
        "number": cycle_invoice_number(subscription_id, cycle_index),
        "kind": "subscription",
        "client_id": client_id,
        "location_id": location_id,
        "subscription_id": subscription_id,
        "cycle_key": key,
        "period_start": period_start,
        "period_end": period_end,
        "status": InvoiceStatus.OPEN,
        "total_cents": total,
        "paid_cents": 0,
        "due_at": due_at,
    }
    at = stamp_of(session)
    if at is not None:
        values |= {"created_at": at, "updated_at": at}
    inserted: Invoice | None = session.scalars(_INSERT_CYCLE_INVOICE, values).first()
    if inserted is None:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None
        return invoice, False
    _insert_lines(session, invoice_id, lines)
    _post_invoice_issued(session, invoice_id, location_id, client_id, lines)
    emit(
        session,
        type="invoice.issued",
        stream=subscription_stream(subscription_id),
        payload={"invoice_id": invoice_id, "total_cents": total, "period_start": period_start.isoformat()},
        dedupe_key=invoice_issued_event_key(invoice_id),
    )
    return inserted, True


def create_counter_invoice(
    session: Session,
    *,
    invoice_id: str,
    client_id: str,
    location_id: str,
    lines: list[LineSpec],
    kind: str = "counter",
    subscription_id: str | None = None,
) -> Invoice:
    """A one-off invoice (front desk, or a subscription's settlement or proration) with its lines
    and its ledger posting (receivable against revenue)."""
    total = sum(line.amount_cents for line in lines)
    invoice = Invoice(
        id=invoice_id,
        number=one_off_invoice_number(kind, invoice_id),
        kind=kind,
        client_id=client_id,
        location_id=location_id,
        subscription_id=subscription_id,
        status=InvoiceStatus.OPEN,
        total_cents=total,
        paid_cents=0,
    )
    session.add(invoice)
    session.flush()
    _insert_lines(session, invoice_id, lines)
    _post_invoice_issued(session, invoice_id, location_id, client_id, lines)
    stream = event_stream(subscription_id, client_id)
    emit(
        session, type="invoice.issued", stream=stream, payload={"invoice_id": invoice_id, "total_cents": total}, dedupe_key=invoice_issued_event_key(invoice_id)
    )
    session.flush()
    return invoice


def _insert_lines(session: Session, invoice_id: str, lines: list[LineSpec]) -> None:
    """The invoice's lines in one Core INSERT, because nothing reads them back as ORM rows and
    flushing them as ORM rows would spend the worker's CPU on objects no one uses."""
    rows = [{"invoice_id": invoice_id, "kind": line.kind, "description": line.description, "amount_cents": line.amount_cents} for line in lines]
    if rows:
        session.execute(_INSERT_LINES, rows)


def _post_invoice_issued(session: Session, invoice_id: str, location_id: str, client_id: str, lines: list[LineSpec]) -> None:
    """Receivable against each revenue account the lines bill (`books.voiding` reverses it)."""
    total = sum(line.amount_cents for line in lines)
    if total == 0:
        return
    by_account: dict[Account, int] = {}
    for line in lines:
        by_account[line.revenue] = by_account.get(line.revenue, 0) + line.amount_cents
    post(
        session,
        reference=invoice_issued_reference(invoice_id),
        kind=ISSUED_KIND,
        location_id=location_id,
        client_id=client_id,
        invoice_id=invoice_id,
        entries=[(Account.RECEIVABLE, total), *[(account, -amount) for account, amount in by_account.items()]],
    )
