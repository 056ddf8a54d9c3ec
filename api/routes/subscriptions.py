"""Subscriptions: enroll (POST), read (the workflow's own answer plus the database row), and the
commands as sub-resources. Each command is a validated Temporal Update: a refusal comes back as a
4xx naming the field and the reason, and nothing changed. Enrollment (the first cycle is charged),
cancellation (a refund), plan change (a proration) and pay-now can move money, so they require an
`Idempotency-Key` (400 without one)."""

from __future__ import annotations

import re
from datetime import date, datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, money_key, runtime
from api.errors import ERRORS, ApiError, conflict, from_refusal, not_found, refusals, refused
from api.fields import CleanText, Day, Id, PathId
from api.limits import check_amount
from api.reach import body_location_reached, require_reached
from foundation.contracts import CommandResult, SubscriptionView
from foundation.enrollment_window import MAX_DAYS_AHEAD, MAX_DAYS_BACK
from foundation.ids import service_redeemed_event_key, subscription_stream, subscription_workflow_id
from foundation.scopes import Caller
from models.clinic import Location, SavedCard
from models.db import session_scope
from models.outbox import emit
from models.plans import HealthPlan
from models.subscriptions import ServiceRedemption, Subscription
from operations import redemptions, subscriptions as commands
from operations.audit import Subject, record
from operations.cards import usable_card
from operations.enrollment import EnrollRequest, check_start_date, enroll
from operations.plan_rules import plan_offered
from operations.refusals import Refusal

router = APIRouter(tags=["subscriptions"], responses=ERRORS)

FINISHED = "the subscription has finished (cancelled or ended)"


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.ENROLL_IN))
    client_id: Id
    pet_id: Id
    plan_id: Id
    location_id: Id
    start_date: Day = Field(description="First day of the first period (its day of month is the anchor day)")
    card_id: Id | None = Field(default=None, description="Saved card to charge; unset: the client's default card")
    subscription_id: Id | None = None


class SubscriptionRow(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.SUBSCRIPTION))
    id: str
    client_id: str
    pet_id: str
    plan_id: str
    plan_version: int = Field(description="The plan version the current term bills; it moves on at renewal")
    location_id: str
    card_id: str | None
    start_date: date
    anchor_day: int
    status: str
    term_end: date | None
    cancel_at_term_end: bool
    next_due_at: datetime | None
    cancelled_at: datetime | None


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ENROLLMENT))
    subscription_id: str
    workflow_id: str
    created: bool = Field(description="False when this enrollment already existed (same terms)")
    subscription: SubscriptionRow


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.SUBSCRIPTION_OUT))
    subscription: SubscriptionRow
    workflow: SubscriptionView | None = Field(description="The workflow's own view (query); null if it cannot be reached")


class CommandOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.COMMAND))
    accepted: bool
    status: str
    message: str


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.CANCEL_IN))
    mode: str = Field(default="now", pattern=r"^(now|term_end)$", description="now (settle per plan policy) or term_end")
    reason: CleanText = Field(default="", max_length=500)


class CardChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.CARD_CHANGE_IN))
    card_id: Id


class PlanChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.PLAN_CHANGE_IN))
    plan_id: Id


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.REDEMPTION_IN))
    service_code: CleanText = Field(min_length=1, max_length=40)


class RedemptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.REDEMPTION))
    id: str
    subscription_id: str
    service_code: str
    retail_cents: int
    redeemed_at: datetime


# ------------------------------------------------------------------------------------- helpers
def _row(rt: Runtime, subscription_id: str, caller: Caller) -> Subscription:
    """The subscription, or 404 when it is unknown or at a location the caller does not reach."""
    with Session(rt.engine) as session:
        row = session.get(Subscription, subscription_id)
    if row is None:
        raise not_found("subscription_id", f"unknown subscription {subscription_id}")
    require_reached(caller, row.location_id, "subscription_id", "subscription", subscription_id)
    return row


def _audit(rt: Runtime, caller: Caller, key: str | None = None) -> commands.Audit:
    return commands.Audit(rt.engine, caller.actor, key)


def _refusal(error: Exception, field: str) -> ApiError:
    """A refused command: a conflict with the subscription's state is 409, a bad value 422."""
    reason = re.sub(r"^[A-Za-z]+Error: ", "", str(error))
    if field == "status" or any(word in reason for word in ("no further commands", "has finished", "already finished")):
        return conflict("status", reason)
    return refused(field, reason)


async def _command(rt: Runtime, caller: Caller, subscription_id: str, field: str, call) -> CommandOut:  # type: ignore[no-untyped-def]
    _row(rt, subscription_id, caller)
    try:
        result: CommandResult = await call()
    except commands.UnknownSubscription as error:
        raise not_found("subscription_id", str(error)) from None
    except commands.CommandRefused as error:
        raise _refusal(error, field) from None
    if not result.accepted:
        raise conflict("status", result.message)
    return CommandOut(accepted=result.accepted, status=result.status, message=result.message)


# ------------------------------------------------------------------------------------- routes
@router.post(
    "/subscriptions",
    status_code=201,
    response_model=EnrollmentOut,
    responses={
        200: {"model": EnrollmentOut, "description": "The same enrollment already existed"},
        **refusals(
            refused="unknown location, client, pet, plan or card, or one of another client or location; a start_date more than "
            f"{MAX_DAYS_BACK} days back or {MAX_DAYS_AHEAD} ahead; a location that does not allow Gravity payment for recurring "
            "payments; an expired or disabled card; a plan whose first invoice is above the location's max_invoice_cents",
            conflict="another enrollment already has this subscription_id with other terms; the plan was retired",
        ),
    },
    dependencies=[Depends(money_key)],  # the first cycle is charged at once
)
async def enroll_subscription(body: EnrollIn, response: Response, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> EnrollmentOut:
    """Enroll a pet in a plan: writes the subscription and starts its workflow (which bills the first
    cycle at once when the start date is today or past). Repeating the same enrollment is a 200."""
    body_location_reached(caller, body.location_id)
    try:
        check_start_date(body.start_date, date.today())
    except Refusal as error:
        raise from_refusal(error) from None
    with Session(rt.engine) as session:
        plan = session.get(HealthPlan, body.plan_id)
        if plan is not None:
            check_amount(session.get(Location, body.location_id), "plan_id", plan.price_cents + plan.enrollment_fee_cents)
    request = EnrollRequest(
        client_id=body.client_id,
        pet_id=body.pet_id,
        plan_id=body.plan_id,
        location_id=body.location_id,
        start_date=body.start_date,
        card_id=body.card_id,
        subscription_id=body.subscription_id,
    )
    try:
        enrollment = await enroll(rt.temporal, rt.engine, request, task_queue=rt.task_queue, actor=caller.actor)
    except Refusal as error:
        raise from_refusal(error) from None
    response.status_code = 201 if enrollment.created else 200
    row = _row(rt, enrollment.subscription_id, caller)
    return EnrollmentOut(
        subscription_id=enrollment.subscription_id,
        workflow_id=enrollment.workflow_id,
        created=enrollment.created,
        subscription=SubscriptionRow.model_validate(row),
    )


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def read_subscription(subscription_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> SubscriptionOut:
    row = _row(rt, subscription_id, caller)
    try:
        view: SubscriptionView | None = await commands.describe(rt.temporal, subscription_id)
    except commands.UnknownSubscription:
        view = None
    return SubscriptionOut(subscription=SubscriptionRow.model_validate(row), workflow=view)


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    response_model=CommandOut,
    responses=refusals(conflict=FINISHED),
)
async def cancel_subscription(
    subscription_id: PathId, body: CancelIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller), key: str = Depends(money_key)
) -> CommandOut:
    audit = _audit(rt, caller, key)
    return await _command(
        rt, caller, subscription_id, "status", lambda: commands.cancel(rt.temporal, subscription_id, mode=body.mode, reason=body.reason, audit=audit)
    )


@router.post(
    "/subscriptions/{subscription_id}/pause",
    response_model=CommandOut,
    responses=refusals(conflict="the subscription is already paused, or has finished"),
)
async def pause_subscription(
    subscription_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller), key: str | None = Depends(idempotency_key)
) -> CommandOut:
    audit = _audit(rt, caller, key)
    return await _command(rt, caller, subscription_id, "status", lambda: commands.pause(rt.temporal, subscription_id, audit=audit))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=CommandOut,
    responses=refusals(conflict="the subscription is not paused, or has finished"),
)
async def resume_subscription(
    subscription_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller), key: str | None = Depends(idempotency_key)
) -> CommandOut:
    audit = _audit(rt, caller, key)
    return await _command(rt, caller, subscription_id, "status", lambda: commands.resume(rt.temporal, subscription_id, audit=audit))


@router.post(
    "/subscriptions/{subscription_id}/card",
    response_model=CommandOut,
    responses=refusals(refused="an unknown or disabled card, or one of another client", conflict=FINISHED),
)
async def change_card(
    subscription_id: PathId,
    body: CardChangeIn,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
    key: str | None = Depends(idempotency_key),
) -> CommandOut:
    row = _row(rt, subscription_id, caller)
    with Session(rt.engine) as session:
        usable_card(session.get(SavedCard, body.card_id), body.card_id, row.client_id, None)
    audit = _audit(rt, caller, key)
    return await _command(rt, caller, subscription_id, "card_id", lambda: commands.change_card(rt.temporal, subscription_id, body.card_id, audit=audit))


@router.post(
    "/subscriptions/{subscription_id}/plan",
    response_model=CommandOut,
    responses=refusals(
        refused="an unknown or inactive plan, one not offered at the subscription's location, or one priced above its max_invoice_cents; "
        "a change the plan rules do not allow",
        conflict=FINISHED + "; a retired plan",
    ),
)
async def change_plan(
    subscription_id: PathId, body: PlanChangeIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller), key: str = Depends(money_key)
) -> CommandOut:
    row = _row(rt, subscription_id, caller)
    with Session(rt.engine) as session:
        try:
            plan = plan_offered(session, body.plan_id, row.location_id)
        except Refusal as error:
            raise from_refusal(error) from None
        check_amount(session.get(Location, row.location_id), "plan_id", plan.price_cents)
    audit = _audit(rt, caller, key)
    return await _command(rt, caller, subscription_id, "plan_id", lambda: commands.change_plan(rt.temporal, subscription_id, body.plan_id, audit=audit))


@router.post(
    "/subscriptions/{subscription_id}/pay-now",
    response_model=CommandOut,
    responses=refusals(conflict="nothing is open to pay now, or " + FINISHED),
)
async def pay_now(
    subscription_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller), key: str = Depends(money_key)
) -> CommandOut:
    """Charge every open invoice of the subscription now (after a card fix, or at the client's wish)."""
    audit = _audit(rt, caller, key)
    return await _command(rt, caller, subscription_id, "status", lambda: commands.pay_now(rt.temporal, subscription_id, audit=audit))


@router.post(
    "/subscriptions/{subscription_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(
        refused="the subscription's plan includes no such service",
        conflict="the service was already redeemed as often as the plan includes it this term, or " + FINISHED,
    ),
)
def redeem_service(subscription_id: PathId, body: RedemptionIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> ServiceRedemption:
    """Record a plan service the clinic delivered, at its retail value (early-cancellation settlement
    charges redeemed value under the `charge_redeemed` policy)."""
    with session_scope(rt.engine) as session:
        sub = session.exec(select(Subscription).where(Subscription.id == subscription_id).with_for_update()).first()
        if sub is None:
            raise not_found("subscription_id", f"unknown subscription {subscription_id}")
        require_reached(caller, sub.location_id, "subscription_id", "subscription", subscription_id)
        try:
            redemption = redemptions.redeem_service(session, sub, body.service_code)
        except Refusal as error:
            raise from_refusal(error) from None
        record(session, caller.actor, "subscription.redeem", Subject("subscription", sub.id, sub.location_id), workflow_id=subscription_workflow_id(sub.id))
        emit(
            session,
            type="service.redeemed",
            stream=subscription_stream(sub.id),
            payload={"redemption_id": redemption.id, "service_code": redemption.service_code, "retail_cents": redemption.retail_cents},
            dedupe_key=service_redeemed_event_key(redemption.id),
        )
        return redemption
