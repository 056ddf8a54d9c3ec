"""Finding a client and their statement: each invoice of a year, what it asked, what was paid on it
(card money, client credit), what was given back and what is still owed, with totals.

Why its own query and not the audit trail: the trail shows every event, each amount several times;
a statement shows each amount once, the way finance reads a customer account.

An invoice belongs to the year of its date, on the location's calendar: a plan cycle's due date
(the workflow's time, so a demo played in simulated time shows its simulated year), else the day
it was created (a counter invoice). "Paid" is card
money kept for the invoice, gross of later refunds (the same definition as the report's
"collected for invoices"); "refunded" is what completed refunds and voids gave back on it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import pendulum
from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from books.balances import open_balance
from books.credit import credit_returned
from foundation.statuses import RefundStatus
from models.billing import CreditApplication, Invoice, InvoiceLine, Payment, Refund
from models.clinic import Client, Location
from operations.reports import kept_card_money

MOST_MATCHES = 50
FIRST_YEAR, LAST_YEAR = 2000, 2100


class StatementRefused(ValueError):
    """The search text, client or year is not one a statement can be made for."""


@dataclass(frozen=True)
class ClientMatch:
    client_id: str
    name: str
    email: str | None
    location_id: str


@dataclass(frozen=True)
class StatementLine:
    invoice_id: str
    number: str
    issued_on: date
    description: str
    status: str
    total_cents: int
    paid_cents: int
    refunded_cents: int
    credit_cents: int
    balance_cents: int


@dataclass
class Statement:
    client_id: str
    name: str
    location_id: str
    year: int
    lines: list[StatementLine] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        names = ("total_cents", "paid_cents", "refunded_cents", "credit_cents", "balance_cents")
        return {name: sum(getattr(line, name) for line in self.lines) for name in names}

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "location_id": self.location_id,
            "year": self.year,
            "amounts_in": "cents",
            "invoices": [asdict(line) | {"issued_on": line.issued_on.isoformat()} for line in self.lines],
            "totals": self.totals(),
        }

    def to_csv(self) -> str:
        """One row per invoice, then a totals row; amounts in dollars with two decimals."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["date", "invoice", "description", "status", "total", "paid", "refunded", "credit_applied", "balance"])
        for line in self.lines:
            amounts = (line.total_cents, line.paid_cents, line.refunded_cents, line.credit_cents, line.balance_cents)
            writer.writerow([line.issued_on.isoformat(), line.number, line.description, line.status, *(_dollars(c) for c in amounts)])
        totals = self.totals()
        writer.writerow(["", "TOTAL", f"{len(self.lines)} invoice(s)", "", *(_dollars(c) for c in totals.values())])
        return out.getvalue()


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def find_clients(engine: Engine, text: str, *, reach: frozenset[str] | None = None) -> list[ClientMatch]:
    """Clients whose name or email contains `text` (any case), at most MOST_MATCHES, by name."""
    words = text.strip()
    if not words:
        raise StatementRefused("TEXT: give part of a client's name or email")
    pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = select(Client).where(or_(col(Client.name).ilike(pattern, escape="\\"), col(Client.email).ilike(pattern, escape="\\")))
    if reach is not None:
        query = query.where(col(Client.location_id).in_(reach))
    with Session(engine) as session:
        found = session.exec(query.order_by(col(Client.name), col(Client.id)).limit(MOST_MATCHES)).all()
        return [ClientMatch(c.id, c.name, c.email, c.location_id) for c in found]


def client_statement(engine: Engine, client_id: str, year: int | None = None, *, reach: frozenset[str] | None = None) -> Statement:
    """Every invoice the client was issued in `year` (default: this year; the location's calendar), amounts once each."""
    if year is not None and not FIRST_YEAR <= year <= LAST_YEAR:
        raise StatementRefused(f"--year: {year} is not a year between {FIRST_YEAR} and {LAST_YEAR}")
    with Session(engine) as session:
        client = session.get(Client, client_id)
        if client is None or (reach is not None and client.location_id not in reach):
            raise StatementRefused(f"CLIENT_ID: unknown client {client_id} (find one with: billing clients find TEXT)")
        location = session.get(Location, client.location_id)
        assert location is not None
        year = year if year is not None else pendulum.now(location.timezone).year
        statement = Statement(client.id, client.name, client.location_id, year)
        issued = func.timezone(location.timezone, func.coalesce(Invoice.due_at, Invoice.created_at))
        invoices = session.exec(
            select(Invoice)
            .where(Invoice.client_id == client_id, func.extract("year", issued) == year)
            .order_by(func.coalesce(Invoice.due_at, Invoice.created_at), col(Invoice.number))
        ).all()
        for invoice in invoices:
            statement.lines.append(_line(session, invoice, location.timezone))
    return statement


def _line(session: Session, invoice: Invoice, tz: str) -> StatementLine:
    paid = session.exec(select(func.coalesce(func.sum(Payment.approved_cents), 0)).where(Payment.invoice_id == invoice.id, kept_card_money("invoice"))).one()
    refunded = session.exec(
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .join(Payment, col(Payment.id) == Refund.payment_id)
        .where(Payment.invoice_id == invoice.id, Refund.status == RefundStatus.DONE)
    ).one()
    applications = session.exec(select(CreditApplication).where(CreditApplication.invoice_id == invoice.id)).all()
    credit = sum(a.amount_cents for a in applications if a.id is not None and not credit_returned(session, a.id))
    dated = invoice.due_at or invoice.created_at
    assert dated is not None
    return StatementLine(
        invoice_id=invoice.id,
        number=invoice.number,
        issued_on=pendulum.instance(dated).in_timezone(tz).date(),
        description=_description(session, invoice),
        status=invoice.status,
        total_cents=invoice.total_cents,
        paid_cents=int(paid),
        refunded_cents=int(refunded),
        credit_cents=credit,
        balance_cents=open_balance(invoice),
    )


def _description(session: Session, invoice: Invoice) -> str:
    """The invoice's first line, and how many more; a plan cycle says its period."""
    lines = session.exec(select(InvoiceLine.description).where(InvoiceLine.invoice_id == invoice.id).order_by(col(InvoiceLine.id))).all()
    text = lines[0] if lines else invoice.kind
    if len(lines) > 1:
        text += f" (+{len(lines) - 1} more)"
    if invoice.period_start is not None and invoice.period_end is not None:
        text += f", {invoice.period_start.isoformat()} to {invoice.period_end.isoformat()}"
    return text
