"""Activities behind the subscription's commands: change card, cancel now (with settlement), change plan.

Each validates against the database before writing anything, so a refused command changes nothing:
it raises a non-retryable `InvalidCommand` and the workflow's Update fails with that message.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import ParamSpec, TypeVar

import pendulum
from psycopg.errors import CheckViolation
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.card_charges import CardCollector
from activities.moment import activity_time, dated
from activities.refunds import Refunder
from books.settlements import (
    paid_for_period,
    proration_credit,
    proration_invoice,
    reserve_settlement_refunds,
    settlement_invoice,
    settlement_refunds,
    void_unpaid,
)
from foundation.contracts import CancelInput, CancelOutcome, CardChange, PlanChangeInput, PlanChangeOutcome, PlanTerms
from foundation.ids import (
    card_changed_event_key,
    plan_changed_event_key,
    proration_charge_key,
    settlement_charge_key,
    settlement_failed_event_key,
    subscription_cancelled_event_key,
    subscription_stream,
)
from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES, PaymentStatus, RefundStatus, SubscriptionStatus
from gravity.directory import GatewayDirectory
from models.billing import Payment
from models.clinic import Location, SavedCard
from models.db import session_scope
from models.outbox import emit
from models.plans import HealthPlan, terms_of
from models.subscriptions import ServiceRedemption, Subscription
from operations.cards import usable_card
from operations.plan_rules import check_same_interval, plan_offered
from operations.refusals import Refusal
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
        """The card change's one transaction, off the event loop, dated by the workflow's time."""
        with session_scope(self._engine, at=activity_time(change.at)) as session:
            sub = _live_subscription(session, change.subscription_id)
            location = session.get(Location, sub.location_id)
            assert location is not None
            today = pendulum.instance(info.current_attempt_scheduled_time).in_timezone(location.timezone).date()
            try:
                card = usable_card(session.get(SavedCard, change.card_id), change.card_id, sub.client_id, today)
            except Refusal as error:
                raise refuse(error.reason) from None
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
        with dated(request.cancel_at) as at:
            return await self._cancel(request, at)

    async def _cancel(self, request: CancelInput, at: datetime | None) -> CancelOutcome:
        voided, settlement, settlement_invoice_id, to_send = await asyncio.to_thread(self._cancel_in_books, request, at)
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
                    at=at,
                )
            for payment_id, amount, attempt_key in to_send:
                outcome = await self._refunder.give_back(
                    payment_id=payment_id,
                    amount_cents=amount,
                    kind="refund",
                    attempt_key=attempt_key,
                    reason="early cancellation: unused part of the current period",
                    at=at,
                )
                if outcome.status != RefundStatus.DONE:
                    raise ApplicationError(f"Gravity did not refund payment {payment_id}: {outcome.message}", non_retryable=True)
                refund_id = refund_id or outcome.refund_id
        except ApplicationError as error:
            if not error.non_retryable:
                raise
            await asyncio.to_thread(self._settlement_failed, request.subscription_id, str(error), at)
        return CancelOutcome(
            settlement_kind=settlement.kind,
            settlement_cents=settlement.amount_cents,
            voided_invoice_ids=[v for v in voided if v],
            settlement_invoice_id=settlement_invoice_id,
            refund_id=refund_id,
        )

    def _cancel_in_books(
        self, request: CancelInput, at: datetime | None
    ) -> tuple[list[str | None], proration.Settlement, str | None, list[tuple[str, int, str]]]:
        """The cancellation's one transaction: what it voided, the settlement, its invoice, and the
        refunds reserved for it (payment, cents, attempt key)."""
        with session_scope(self._engine, at=at) as session:
            sub = _locked_subscription(session, request.subscription_id)
            location = session.get(Location, sub.location_id)
            assert location is not None
            voided = [void_unpaid(session, invoice_id, "subscription cancelled") for invoice_id in request.open_invoice_ids]
            refunds = settlement_refunds(session, sub.id)
            if refunds:  # a retry: the settlement was decided and reserved by the first try
                settlement = proration.Settlement(proration.REFUND, sum(r.amount_cents for r in refunds), "decided earlier")
            else:
                settlement = self._settlement(session, sub, request, location.timezone)
            settlement_invoice_id = None
            if settlement.kind == proration.CHARGE and settlement.amount_cents > 0:
                settlement_invoice_id = settlement_invoice(session, sub, settlement.amount_cents, settlement.reason)
            if settlement.kind == proration.REFUND and not refunds:
                refunds = reserve_settlement_refunds(session, sub, request.period_start, settlement.amount_cents)
            _mark_cancelled(session, sub, request, settlement)
            return voided, settlement, settlement_invoice_id, [(r.payment_id, r.amount_cents, r.attempt_key) for r in refunds]

    def _settlement_failed(self, subscription_id: str, detail: str, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            emit(
                session,
                type="subscription.settlement_failed",
                stream=subscription_stream(subscription_id),
                payload={"detail": detail},
                dedupe_key=settlement_failed_event_key(subscription_id),
            )

    def _settlement(self, session: Session, sub: Subscription, request: CancelInput, tz: str) -> proration.Settlement:
        if request.period_start is None or request.period_end is None:
            return proration.Settlement(kind=proration.NONE, amount_cents=0, reason="nothing billed yet")
        paid_total = session.exec(
            select(func.coalesce(func.sum(Payment.approved_cents - Payment.refunded_cents), 0)).where(
                Payment.subscription_id == sub.id, Payment.status == PaymentStatus.APPROVED, Payment.purpose == "invoice"
            )
        ).one()
        redeemed = session.exec(select(func.coalesce(func.sum(ServiceRedemption.retail_cents), 0)).where(ServiceRedemption.subscription_id == sub.id)).one()
        current_paid = paid_for_period(session, sub.id, request.period_start)
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
        with dated(request.change_at) as at:
            plan, new_terms, result, invoice_id = await asyncio.to_thread(self._change_plan_in_books, request, at)
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
                    at=at,
                )
        message = f"now on plan {plan.id}; " + (
            f"charged {net} cents for the rest of the period" if net > 0 else f"credited {-net} cents" if net < 0 else "no proration"
        )
        return PlanChangeOutcome(new_plan=new_terms, net_cents=net, message=message, invoice_id=invoice_id, collection=collection)

    def _change_plan_in_books(
        self, request: PlanChangeInput, at: datetime | None
    ) -> tuple[HealthPlan, PlanTerms, proration.ProrationResult | None, str | None]:
        """The plan change's one transaction (off the event loop): the new plan and its terms, the
        proration, and the proration invoice to collect, if any."""
        with session_scope(self._engine, at=at) as session:
            sub = _live_subscription(session, request.subscription_id)
            try:
                plan = plan_offered(session, request.new_plan_id, sub.location_id)
                check_same_interval(request.old_plan.interval_months, plan)
            except Refusal as error:
                raise refuse(error.reason) from None
            new_terms = terms_of(plan)
            location = session.get(Location, sub.location_id)
            assert location is not None
            result = self._proration(request, plan, location.timezone)
            sub.plan_id = plan.id
            sub.plan_version = plan.version
            session.add(sub)
            invoice_id = None
            if result is not None and result.net_cents > 0:
                invoice_id = proration_invoice(session, sub, request, result.net_cents)
            elif result is not None and result.net_cents < 0:
                proration_credit(session, sub, request, -result.net_cents)
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
    if sub.status in FINAL_SUBSCRIPTION_STATUSES:
        raise refuse(f"the subscription is {sub.status}; no further commands are accepted")
    return sub


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
