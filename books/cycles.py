"""A subscription cycle's bookkeeping before its charge: the subscription moved on, the cycle's
invoice issued (once), the client's credit applied, and a warning when the card will not last.

All of it runs in the charge's own database transaction, in as few statements as correctness
allows: the subscription's UPDATE also reads the location, the card on file and whether the client
holds any credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pendulum
from sqlalchemy import Select, bindparam, case, exists, func, update
from sqlmodel import Session

from books.cards import card_expired_on
from books.charges import CardOnFile, ChargeSite, charge_site_query, site_of
from books.credit import apply_client_credit
from books.invoices import LineSpec, ensure_cycle_invoice
from books.recognition import revenue_account
from foundation.contracts import ChargeRequest
from foundation.ids import card_expiring_event_key, subscription_stream
from foundation.statuses import DepositStatus, InvoiceStatus, SubscriptionStatus
from models.billing import Deposit, Invoice
from models.ledger import Account
from models.outbox import emit
from models.subscriptions import Subscription


def cycle_lines(request: ChargeRequest) -> list[LineSpec]:
    """Plan fee every cycle, plus the enrollment fee on the first; a yearly plan's are credited to
    deferred revenue and earned month by month (`books.recognition`)."""
    plan = request.plan
    period = f"{request.period_start.isoformat()} to {request.period_end.isoformat()}"
    plan_revenue = revenue_account(Account.PLAN_REVENUE, plan.interval_months)
    lines = [LineSpec("plan_fee", f"Health plan {plan.plan_id}, {period}", plan.price_cents, plan_revenue)]
    if request.first_cycle and plan.enrollment_fee_cents > 0:
        lines.append(LineSpec("enrollment_fee", "Enrollment fee", plan.enrollment_fee_cents, revenue_account(Account.FEE_REVENUE, plan.interval_months)))
    return lines


@dataclass(frozen=True)
class CycleInvoice:
    """The cycle's invoice (locked), the location and card on file its charge uses, and whether
    this transaction created the invoice (then no attempt of it can exist yet)."""

    invoice: Invoice
    site: ChargeSite
    new_invoice: bool


@dataclass(frozen=True)
class _Billed:
    """Whom the subscription bills and where, as the statement that advanced it returned them."""

    client_id: str
    site: ChargeSite
    client_has_credit: bool


def _advance_statement() -> Select[Any]:
    """Lock the subscription row and move it on (a pending one becomes active; `next_due_at`, when
    given, replaces the next due date), and read what the charge needs, in one statement: the
    UPDATE ... RETURNING runs in a CTE whose row the SELECT of the location and card on file joins,
    beside whether the client holds any credit (most hold none, and then the locking read of
    deposits is skipped)."""
    table, deposit = Subscription.__table__, Deposit.__table__
    advanced = (
        update(table)
        .where(table.c.id == bindparam("advance_id"))
        .values(
            # `.value`: SQLAlchemy types a plain string as VARCHAR but an enum member it does not know.
            status=case((table.c.status == SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE.value), else_=table.c.status),
            next_due_at=func.coalesce(bindparam("advance_next_due_at", type_=table.c.next_due_at.type), table.c.next_due_at),
        )
        .returning(table.c.client_id, table.c.location_id)
        .cte("advanced")
    )
    has_credit = exists().where(deposit.c.client_id == advanced.c.client_id, deposit.c.status == DepositStatus.HELD, deposit.c.remaining_cents > 0)
    return charge_site_query(
        advanced.c.location_id, bindparam("site_card_id"), advanced.c.client_id.label("billed_client_id"), has_credit.label("client_has_credit")
    )


# Built once, like every statement of the charge path, so that a charge does not rebuild this CTE
# and its cache key (a constant's cache key is memoized): a module constant with bound parameters,
# executed with their values (named unlike any column: for an UPDATE, SQLAlchemy reads a parameter
# named after a column of its table as one more SET).
_ADVANCE = _advance_statement()


def _advance_subscription(session: Session, request: ChargeRequest) -> _Billed:
    """`_ADVANCE` for this cycle: the next due date moves on a cycle's first attempt only. One
    statement instead of three (each saved is a round trip); Core, not ORM, because the ORM's
    UPDATE returning the entity spends the worker's CPU building an object the charge never uses."""
    next_due_at = request.next_due_at if request.attempt <= 1 else None
    params = {"advance_id": request.subscription_id, "advance_next_due_at": next_due_at, "site_card_id": request.card_id}
    row = session.execute(_ADVANCE, params).one()
    return _Billed(row.billed_client_id, site_of(row), bool(row.client_has_credit))


def invoice_cycle(session: Session, request: ChargeRequest) -> CycleInvoice:
    """The cycle's invoice (locked), client credit applied, and the subscription row's next due."""
    billed = _advance_subscription(session, request)
    invoice, created = ensure_cycle_invoice(
        session,
        subscription_id=request.subscription_id,
        client_id=billed.client_id,
        location_id=billed.site.location_id,
        cycle_index=request.cycle_index,
        period_start=request.period_start,
        period_end=request.period_end,
        due_at=request.due_at,
        lines=cycle_lines(request),
    )
    if invoice.status == InvoiceStatus.OPEN and billed.client_has_credit:
        apply_client_credit(session, invoice)
    if billed.site.card is not None:
        _warn_if_card_expires(session, request, billed.site.card, billed.site.timezone)
    return CycleInvoice(invoice, billed.site, new_invoice=created)


def _warn_if_card_expires(session: Session, request: ChargeRequest, card: CardOnFile, timezone: str) -> None:
    """Raise `card.expiring` once per cycle when the card will not last to the next due moment."""
    if request.next_due_at is None:
        return
    next_day = pendulum.instance(request.next_due_at).in_timezone(timezone).date()
    if card_expired_on(card.exp_month, card.exp_year, next_day):
        emit(
            session,
            type="card.expiring",
            stream=subscription_stream(request.subscription_id),
            payload={"card_id": card.id, "expires": f"{card.exp_month:02d}/{card.exp_year}", "next_due_at": request.next_due_at.isoformat()},
            dedupe_key=card_expiring_event_key(request.subscription_id, card.id, request.cycle_index),
        )
