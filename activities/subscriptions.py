"""Activities of the subscription workflow: the database and Gravity work of one billing cycle.

`charge_cycle` is the one activity an ordinary cycle costs. It is idempotent end to end: the invoice
is keyed by cycle (UNIQUE), the charge attempt by (subscription, period start, attempt number), and
`CardCollector` looks an attempt's id up at Gravity before it would ever send it twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import pendulum
from sqlalchemy import Engine, Select, bindparam, case, exists, func, update
from sqlmodel import Session, select
from temporalio import activity

from activities.card_charges import CardCollector, CardOnFile, ChargeSite, Prepared, charge_site_query, site_of
from activities.cards import card_expired_on
from foundation.contracts import ChargeAsked, ChargeOutcome, ChargeRequest, StatusChange
from foundation.ids import card_expiring_event_key, charge_key, invoice_id_for_cycle, invoice_retry_key, subscription_stream
from foundation.statuses import ChargeResult, DepositStatus, InvoiceStatus, SubscriptionStatus
from gravity.directory import GatewayDirectory
from models.billing import Deposit
from models.db import session_scope
from models.invoicing import LineSpec, apply_client_credit, ensure_cycle_invoice, open_balance
from models.ledger import Account
from models.outbox import emit
from models.subscriptions import Subscription, live_subscription_ids


def cycle_lines(request: ChargeRequest) -> list[LineSpec]:
    """Plan fee every cycle, plus the enrollment fee on the first."""
    plan = request.plan
    period = f"{request.period_start.isoformat()} to {request.period_end.isoformat()}"
    lines = [LineSpec("plan_fee", f"Health plan {plan.plan_id}, {period}", plan.price_cents, Account.PLAN_REVENUE)]
    if request.first_cycle and plan.enrollment_fee_cents > 0:
        lines.append(LineSpec("enrollment_fee", "Enrollment fee", plan.enrollment_fee_cents, Account.FEE_REVENUE))
    return lines


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


class SubscriptionActivities:
    """Holds the worker's database engine and Gravity clients; each method is one activity."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._collector = CardCollector(engine, gateways)

    @activity.defn(name="charge_cycle")
    async def charge_cycle(self, request: ChargeRequest) -> ChargeOutcome:
        """Invoice the cycle (once), apply client credit, then try to collect with attempt `attempt`,
        the invoicing and the attempt's payment row in one database transaction (or retry the
        subscription's one-off invoice the request names). The outcome says
        which charge it answers (`ChargeAsked`) for the audit trail."""
        return replace(await self._charge(request), asked=ChargeAsked.of(request))

    async def _charge(self, request: ChargeRequest) -> ChargeOutcome:
        if request.attempt == 0:
            invoice_id, balance = await asyncio.to_thread(self._invoice_cycle, request)
            return ChargeOutcome(invoice_id, ChargeResult.PAID if balance == 0 else ChargeResult.NOT_CHARGED, balance)
        if request.invoice_id is not None:
            return await self._collector.collect(
                invoice_id=request.invoice_id,
                card_id=request.card_id,
                attempt_key=invoice_retry_key(request.invoice_id, request.attempt),
                attempt=request.attempt,
                when=request.attempt_at or request.due_at,
                stream=subscription_stream(request.subscription_id),
            )
        return await self._collector.collect(
            invoice_id=invoice_id_for_cycle(request.subscription_id, request.period_start),
            card_id=request.card_id,
            attempt_key=charge_key(request.subscription_id, request.period_start, request.attempt),
            attempt=request.attempt,
            when=max(request.due_at, request.attempt_at or request.due_at),
            stream=subscription_stream(request.subscription_id),
            before=lambda session: self._invoice_cycle_in(session, request),
        )

    def _invoice_cycle(self, request: ChargeRequest) -> tuple[str, int]:
        with session_scope(self._engine) as session:
            invoice = self._invoice_cycle_in(session, request).invoice
            return invoice.id, open_balance(invoice)

    def _invoice_cycle_in(self, session: Session, request: ChargeRequest) -> Prepared:
        """The cycle's invoice (locked), client credit, and the subscription row's next due."""
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
            self._warn_if_card_expires(session, request, billed.site.card, billed.site.timezone)
        return Prepared(invoice, billed.site, new_invoice=created)

    def _warn_if_card_expires(self, session: Session, request: ChargeRequest, card: CardOnFile, timezone: str) -> None:
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

    @activity.defn(name="live_subscription_ids")
    async def live_subscription_ids(self, location_id: str) -> list[str]:
        """The location's subscriptions that can still bill (for the charging-enabled broadcast)."""
        return await asyncio.to_thread(self._live_at, location_id)

    def _live_at(self, location_id: str) -> list[str]:
        with session_scope(self._engine) as session:
            return live_subscription_ids(session, location_id)

    @activity.defn(name="mirror_status")
    async def mirror_status(self, change: StatusChange) -> None:
        """Write the workflow's decision to the subscription row and the outbox, together."""
        await asyncio.to_thread(self._mirror_status, change)

    def _mirror_status(self, change: StatusChange) -> None:
        with session_scope(self._engine) as session:
            sub = session.exec(select(Subscription).where(Subscription.id == change.subscription_id).with_for_update()).one()
            now = datetime.now(timezone.utc)
            # The workflow calls a subscription that has not billed yet "active"; its row stays
            # "pending" until the first charge makes it active.
            if not (sub.status == SubscriptionStatus.PENDING and change.status == SubscriptionStatus.ACTIVE):
                sub.status = change.status
            if change.cancel_at_term_end is not None:
                sub.cancel_at_term_end = change.cancel_at_term_end
            if change.next_due_at is not None:
                sub.next_due_at = change.next_due_at
            if change.status == SubscriptionStatus.CANCELLED and sub.cancelled_at is None:
                sub.cancelled_at = now
            sub.updated_at = now
            session.add(sub)
            if change.event_type:
                emit(
                    session,
                    type=change.event_type,
                    stream=subscription_stream(sub.id),
                    payload={"status": change.status, "detail": change.detail},
                    dedupe_key=change.event_key,
                )
