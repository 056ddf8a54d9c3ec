"""Activities behind the subscription's commands: change card, cancel now (with settlement), change plan.

Each validates against the database before writing anything, so a refused command changes nothing:
it raises a non-retryable `InvalidCommand` and the workflow's Update fails with that message.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import ParamSpec, TypeVar

import pendulum
from psycopg.errors import CheckViolation
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.card_charges import CardCollector
from activities.refunds import Refunder
from books.attempts import lock_invoice
from books.cards import card_expired_on
from books.credit import return_credit_application
from books.invoices import LineSpec, create_counter_invoice
from books.ledger import post
from books.refunds import refundable_cents, start_refund
from books.voiding import void_invoice, write_off_unpaid
from foundation.contracts import CancelInput, CancelOutcome, CardChange, PlanChangeInput, PlanChangeOutcome, PlanTerms
from foundation.ids import (
    card_changed_event_key,
    external_id,
    invoice_id_for,
    plan_changed_event_key,
    proration_charge_key,
    proration_credit_deposit_id,
    proration_credit_reference,
    proration_invoice_key,
    settlement_charge_key,
    settlement_credit_deposit_id,
    settlement_credit_reference,
    settlement_failed_event_key,
    settlement_invoice_key,
    settlement_refund_key,
    settlement_refund_prefix,
    subscription_cancelled_event_key,
    subscription_stream,
)
from foundation.statuses import InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from gravity.directory import GatewayDirectory
from models.billing import CreditApplication, Deposit, Invoice, Payment, Refund
from models.clinic import Location, SavedCard
from models.db import session_scope
from models.ledger import Account
from models.outbox import emit
from models.plans import HealthPlan, terms_of
from models.subscriptions import ServiceRedemption, Subscription
from workflows import proration


def refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidCommand", non_retryable=True)


P = ParamSpec("P")
R = TypeVar("R")


def check_violations_refused(command: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A CHECK constraint's refusal as the command's refusal: the same rows meet the same check on
    every try (Temporal sees only IntegrityError, which a UNIQUE race also raises)."""

    @functools.wraps(command)
    async def refusing(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await command(*args, **kwargs)
        except IntegrityError as error:
            if not isinstance(error.orig, CheckViolation):
                raise
            raise refuse(f"the database refused the change: {error.orig.diag.constraint_name or error.orig}") from None

    return refusing


@contextmanager
def policy_refusals(what: str) -> Iterator[None]:
    """A pure policy's ValueError as a refusal: the same input fails the same way, so retrying it
    would only hold the workflow's command lock."""
    try:
        yield
    except ValueError as error:
        raise refuse(f"{what}: {error}") from None


class SubscriptionCommandActivities:
    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._collector = CardCollector(engine, gateways)
        self._refunder = Refunder(engine, gateways)

    # ------------------------------------------------------------------ change card
    @activity.defn(name="change_card")
    @check_violations_refused
    async def change_card(self, change: CardChange) -> None:
        await asyncio.to_thread(self._change_card, change, activity.info())

    def _change_card(self, change: CardChange, info: activity.Info) -> None:
        """The card change's one transaction, off the event loop."""
        with session_scope(self._engine) as session:
            sub = _live_subscription(session, change.subscription_id)
            card = session.get(SavedCard, change.card_id)
            if card is None:
                raise refuse(f"unknown card {change.card_id}")
            if card.client_id != sub.client_id:
                raise refuse(f"card {change.card_id} belongs to another client")
            if card.disabled:
                raise refuse(f"card {change.card_id} is disabled")
            location = session.get(Location, sub.location_id)
            assert location is not None
            today = pendulum.instance(info.current_attempt_scheduled_time).in_timezone(location.timezone).date()
            if card_expired_on(card.exp_month, card.exp_year, today):
                raise refuse(f"card {change.card_id} expired {card.exp_month:02d}/{card.exp_year}")
            sub.card_id = card.id
            session.add(sub)
            emit(
                session,
                type="subscription.card_changed",
                stream=subscription_stream(sub.id),
                payload={"card_id": card.id, "masked_number": card.masked_number},
                dedupe_key=card_changed_event_key(sub.id, card.id, info.workflow_run_id),
            )

    # ------------------------------------------------------------------ cancel now
    @activity.defn(name="cancel_subscription")
    @check_violations_refused
    async def cancel_subscription(self, request: CancelInput) -> CancelOutcome:
        """Cancel in one transaction (voids, the settlement decided and reserved, the status and its
        event), then move the settlement's money. The cancellation stands whatever the money step
        meets: a refusal there becomes a `subscription.settlement_failed` event for a person."""
        voided, settlement, settlement_invoice_id, to_send = await asyncio.to_thread(self._cancel_in_books, request)
        refund_id = None
        try:
            if settlement_invoice_id is not None:
                await self._collector.collect(
                    invoice_id=settlement_invoice_id,
                    card_id=request.card_id,
                    attempt_key=settlement_charge_key(request.subscription_id),
                    attempt=1,
                    when=request.cancel_at,
                    stream=subscription_stream(request.subscription_id),
                )
            for payment_id, amount, attempt_key in to_send:
                outcome = await self._refunder.give_back(
                    payment_id=payment_id, amount_cents=amount, kind="refund", attempt_key=attempt_key,
                    reason="early cancellation: unused part of the current period",
                )
                if outcome.status != RefundStatus.DONE:
                    raise ApplicationError(f"Gravity did not refund payment {payment_id}: {outcome.message}", non_retryable=True)
                refund_id = refund_id or outcome.refund_id
        except ApplicationError as error:
            if not error.non_retryable:
                raise
            await asyncio.to_thread(self._settlement_failed, request.subscription_id, str(error))
        return CancelOutcome(
            settlement_kind=settlement.kind,
            settlement_cents=settlement.amount_cents,
            voided_invoice_ids=[v for v in voided if v],
            settlement_invoice_id=settlement_invoice_id,
            refund_id=refund_id,
        )

    def _cancel_in_books(self, request: CancelInput) -> tuple[list[str | None], proration.Settlement, str | None, list[tuple[str, int, str]]]:
        """The cancellation's one transaction: what it voided, the settlement, its invoice, and the
        refunds reserved for it (payment, cents, attempt key)."""
        with session_scope(self._engine) as session:
            sub = _locked_subscription(session, request.subscription_id)
            location = session.get(Location, sub.location_id)
            assert location is not None
            voided = [_void_unpaid(session, invoice_id, "subscription cancelled") for invoice_id in request.open_invoice_ids]
            refunds = _settlement_refunds(session, sub.id)
            if refunds:  # a retry: the settlement was decided and reserved by the first try
                settlement = proration.Settlement(proration.REFUND, sum(r.amount_cents for r in refunds), "decided earlier")
            else:
                settlement = self._settlement(session, sub, request, location.timezone)
            settlement_invoice_id = None
            if settlement.kind == proration.CHARGE and settlement.amount_cents > 0:
                settlement_invoice_id = _settlement_invoice(session, sub, settlement.amount_cents, settlement.reason)
            if settlement.kind == proration.REFUND and not refunds:
                refunds = _reserve_settlement_refunds(session, sub, request.period_start, settlement.amount_cents)
            _mark_cancelled(session, sub, request, settlement)
            return voided, settlement, settlement_invoice_id, [(r.payment_id, r.amount_cents, r.attempt_key) for r in refunds]

    def _settlement_failed(self, subscription_id: str, detail: str) -> None:
        with session_scope(self._engine) as session:
            emit(session, type="subscription.settlement_failed", stream=subscription_stream(subscription_id),
                 payload={"detail": detail}, dedupe_key=settlement_failed_event_key(subscription_id))

    def _settlement(self, session: Session, sub: Subscription, request: CancelInput, tz: str) -> proration.Settlement:
        if request.period_start is None or request.period_end is None:
            return proration.Settlement(kind=proration.NONE, amount_cents=0, reason="nothing billed yet")
        paid_total = session.exec(
            select(func.coalesce(func.sum(Payment.approved_cents - Payment.refunded_cents), 0)).where(
                Payment.subscription_id == sub.id, Payment.status == PaymentStatus.APPROVED, Payment.purpose == "invoice"
            )
        ).one()
        redeemed = session.exec(
            select(func.coalesce(func.sum(ServiceRedemption.retail_cents), 0)).where(ServiceRedemption.subscription_id == sub.id)
        ).one()
        current_paid = _paid_for_period(session, sub.id, request.period_start)
        cancel_day = pendulum.instance(request.cancel_at).in_timezone(tz).date()
        cancel_day = min(max(cancel_day, request.period_start), request.period_end)
        with policy_refusals("cannot settle the cancellation"):
            return proration.early_cancel_settlement(
                policy=request.plan.cancellation_policy,
                paid_total_cents=int(paid_total),
                redeemed_retail_cents=int(redeemed),
                current_period_paid_cents=current_paid,
                period_start=request.period_start,
                period_end=request.period_end,
                cancel_date=cancel_day,
            )

    # ------------------------------------------------------------------ change plan
    @activity.defn(name="change_plan")
    @check_violations_refused
    async def change_plan(self, request: PlanChangeInput) -> PlanChangeOutcome:
        """Switch plans; prorate the current period per the new plan's policy (charge or credit)."""
        plan, new_terms, result, invoice_id = await asyncio.to_thread(self._change_plan_in_books, request)
        net = 0 if result is None else result.net_cents
        collection = None
        if invoice_id is not None:
            collection = await self._collector.collect(
                invoice_id=invoice_id,
                card_id=request.card_id,
                attempt_key=proration_charge_key(request.subscription_id, request.change_at),
                attempt=1,
                when=request.change_at,
                stream=subscription_stream(request.subscription_id),
            )
        message = f"now on plan {plan.id}; " + (
            f"charged {net} cents for the rest of the period" if net > 0 else f"credited {-net} cents" if net < 0 else "no proration"
        )
        return PlanChangeOutcome(new_plan=new_terms, net_cents=net, message=message, invoice_id=invoice_id, collection=collection)

    def _change_plan_in_books(self, request: PlanChangeInput) -> tuple[HealthPlan, PlanTerms, proration.ProrationResult | None, str | None]:
        """The plan change's one transaction (off the event loop): the new plan and its terms, the
        proration, and the proration invoice to collect, if any."""
        with session_scope(self._engine) as session:
            sub = _live_subscription(session, request.subscription_id)
            plan = session.get(HealthPlan, request.new_plan_id)
            if plan is None or not plan.active:
                raise refuse(f"unknown or inactive plan {request.new_plan_id}")
            if plan.location_id not in (None, sub.location_id):
                raise refuse(f"plan {plan.id} is not offered at location {sub.location_id}")
            if plan.interval_months != request.old_plan.interval_months:
                raise refuse("a plan change keeps the billing interval; cancel and enroll for a different interval")
            try:
                new_terms = terms_of(plan)
            except ValueError as error:
                raise refuse(f"plan {plan.id} has an invalid dunning schedule: {error}") from None
            location = session.get(Location, sub.location_id)
            assert location is not None
            result = self._proration(request, plan, location.timezone)
            sub.plan_id = plan.id
            session.add(sub)
            invoice_id = None
            if result is not None and result.net_cents > 0:
                invoice_id = _proration_invoice(session, sub, request, result.net_cents)
            elif result is not None and result.net_cents < 0:
                _proration_credit(session, sub, request, -result.net_cents)
            emit(
                session,
                type="subscription.plan_changed",
                stream=subscription_stream(sub.id),
                payload={"from": request.old_plan.plan_id, "to": plan.id, "net_cents": 0 if result is None else result.net_cents},
                dedupe_key=plan_changed_event_key(sub.id, plan.id, request.change_at),
            )
            return plan, new_terms, result, invoice_id

    def _proration(self, request: PlanChangeInput, plan: HealthPlan, tz: str) -> proration.ProrationResult | None:
        if request.period_start is None or request.period_end is None:
            return None
        change_day = pendulum.instance(request.change_at).in_timezone(tz).date()
        # Up to the period end: on the next period's due day, before that cycle is charged, the paid
        # period is used up and the change settles nothing (the next cycle bills the new price).
        change_day = min(max(change_day, request.period_start), request.period_end)
        with policy_refusals("cannot prorate the plan change"):
            return proration.prorate_change(
                request.old_plan.price_cents,
                plan.price_cents,
                period_start=request.period_start,
                period_end=request.period_end,
                change_date=change_day,
                policy=plan.proration_policy,
            )


def _locked_subscription(session: Session, subscription_id: str) -> Subscription:
    sub = session.exec(select(Subscription).where(Subscription.id == subscription_id).with_for_update()).first()
    if sub is None:
        raise refuse(f"unknown subscription {subscription_id}")
    return sub


def _live_subscription(session: Session, subscription_id: str) -> Subscription:
    """The subscription row, locked, refusing a finished one: a command that reaches a cancelled or
    ended subscription (a run from before the workflow asked again in the command's turn) must not
    change or charge it."""
    sub = _locked_subscription(session, subscription_id)
    if sub.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED):
        raise refuse(f"the subscription is {sub.status}; no further commands are accepted")
    return sub


def _void_unpaid(session: Session, invoice_id: str, reason: str) -> str | None:
    """Void a still-open cycle invoice of a cancelled subscription: applied client credit goes
    back to its deposit, then the invoice is voided with its issue posting reversed. An invoice a
    card already paid part of keeps that part (it was service delivered) and only its unpaid
    remainder is written off."""
    invoice = lock_invoice(session, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.OPEN:
        return None
    for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id == invoice.id)).all():
        assert application.id is not None
        return_credit_application(session, application.id)
    if invoice.paid_cents == 0:
        void_invoice(session, invoice, reason=reason)
        return invoice.id
    write_off_unpaid(session, invoice, reason=reason)
    return invoice.id


def _mark_cancelled(session: Session, sub: Subscription, request: CancelInput, settlement: proration.Settlement) -> None:
    sub.status = SubscriptionStatus.CANCELLED
    sub.cancelled_at = sub.cancelled_at or request.cancel_at
    session.add(sub)
    emit(
        session,
        type="subscription.cancelled",
        stream=subscription_stream(sub.id),
        payload={"reason": request.reason, "settlement": settlement.kind, "settlement_cents": settlement.amount_cents},
        dedupe_key=subscription_cancelled_event_key(sub.id),
    )


def _settlement_refunds(session: Session, subscription_id: str) -> list[Refund]:
    """The settlement's refund rows an earlier try reserved, if any."""
    prefix = settlement_refund_prefix(subscription_id)
    rows = session.exec(select(Refund).where(Refund.attempt_key.like(f"{prefix}%"))).all()  # type: ignore[attr-defined]
    return [r for r in rows if r.attempt_key == prefix or r.attempt_key.startswith(prefix + ":")]


def _reserve_settlement_refunds(session: Session, sub: Subscription, period_start: date | None, amount_cents: int) -> list[Refund]:
    """Spread the settlement refund over the current period's card payments, largest first, each
    reserved now (write before send). What cards cannot take back (the period was paid with client
    credit) goes back to the client as credit."""
    rows: list[Refund] = []
    left = amount_cents
    for index, payment in enumerate(_current_period_payments(session, sub.id, period_start)):
        amount = min(left, refundable_cents(payment))
        if amount <= 0:
            continue
        key = settlement_refund_key(sub.id, index, payment.id)
        refund, _ = start_refund(
            session, payment_id=payment.id, amount_cents=amount, kind="refund", attempt_key=key, external_transaction_id=external_id(key),
            reason="early cancellation: unused part of the current period",
        )
        rows.append(refund)
        left -= amount
    if left > 0:
        _settlement_credit(session, sub, left)
    return rows


def _settlement_credit(session: Session, sub: Subscription, amount_cents: int) -> None:
    """Unused days paid with client credit go back to the client as credit."""
    deposit_id = settlement_credit_deposit_id(sub.id)
    if session.get(Deposit, deposit_id) is not None:
        return
    session.add(Deposit(id=deposit_id, client_id=sub.client_id, location_id=sub.location_id, amount_cents=amount_cents,
                        remaining_cents=amount_cents, source="proration"))
    session.flush()
    post(session, reference=settlement_credit_reference(deposit_id), kind="settlement_credit", location_id=sub.location_id, client_id=sub.client_id,
         entries=[(Account.REFUNDS, amount_cents), (Account.CLIENT_CREDIT, -amount_cents)])


def _paid_for_period(session: Session, subscription_id: str, period_start: date) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(Payment.approved_cents - Payment.refunded_cents), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.subscription_id == subscription_id, Invoice.period_start == period_start, Payment.status == PaymentStatus.APPROVED)
    ).one()
    return int(total)


def _current_period_payments(session: Session, subscription_id: str, period_start: date | None) -> list[Payment]:
    """The current period's approved card payments, largest first."""
    if period_start is None:
        return []
    return list(session.exec(
        select(Payment)
        .join(Invoice, Invoice.id == Payment.invoice_id)  # type: ignore[arg-type]
        .where(
            Invoice.subscription_id == subscription_id,
            Invoice.period_start == period_start,
            Payment.status == PaymentStatus.APPROVED,
            Payment.method != "credit",
        )
        .order_by(Payment.approved_cents.desc(), Payment.id)  # type: ignore[attr-defined]
    ).all())


def _one_off_invoice(session: Session, sub: Subscription, *, key: str, kind: str, amount_cents: int, description: str, revenue: Account) -> str:
    """A settlement or proration invoice, created once per key, with its ledger posting."""
    invoice_id = invoice_id_for(key)
    if session.get(Invoice, invoice_id) is not None:
        return invoice_id
    create_counter_invoice(
        session, invoice_id=invoice_id, client_id=sub.client_id, location_id=sub.location_id,
        lines=[LineSpec(kind, description, amount_cents, revenue)], kind=kind, subscription_id=sub.id,
    )
    return invoice_id


def _settlement_invoice(session: Session, sub: Subscription, amount_cents: int, reason: str) -> str:
    return _one_off_invoice(
        session, sub, key=settlement_invoice_key(sub.id), kind="settlement", amount_cents=amount_cents,
        description=f"Early cancellation settlement: {reason}", revenue=Account.FEE_REVENUE,
    )


def _proration_invoice(session: Session, sub: Subscription, request: PlanChangeInput, amount_cents: int) -> str:
    return _one_off_invoice(
        session, sub, key=proration_invoice_key(sub.id, request.change_at), kind="proration", amount_cents=amount_cents,
        description=f"Plan change {request.old_plan.plan_id} -> {request.new_plan_id}, rest of period", revenue=Account.PLAN_REVENUE,
    )


def _proration_credit(session: Session, sub: Subscription, request: PlanChangeInput, amount_cents: int) -> None:
    """A downgrade's unused difference becomes client credit, applied to the next invoices."""
    deposit_id = proration_credit_deposit_id(sub.id, request.change_at)
    if session.get(Deposit, deposit_id) is not None:
        return
    session.add(Deposit(id=deposit_id, client_id=sub.client_id, location_id=sub.location_id, amount_cents=amount_cents, remaining_cents=amount_cents))
    session.flush()
    post(
        session,
        reference=proration_credit_reference(deposit_id),
        kind="proration_credit",
        location_id=sub.location_id,
        client_id=sub.client_id,
        entries=[(Account.PLAN_REVENUE, amount_cents), (Account.CLIENT_CREDIT, -amount_cents)],
    )
