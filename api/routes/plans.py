"""Health plans: price, interval, term, dunning schedule, cancellation terms and included services.

The dunning schedule is validated here, at the edge, with the same code the workflow uses
(`workflows.dunning`), so a plan that could not be billed is never stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.deps import Runtime, idempotency_key, runtime
from api.errors import ERRORS, conflict, not_found, refusals, refused
from api.fields import MAX_CENTS, CleanText, Count, ExactInt, Flag, Id, NoCardNumber, PathId
from api.limits import check_amount
from foundation.ids import new_id
from models.clinic import Location
from models.plans import HealthPlan, PlanService
from workflows.dunning import DEFAULT_SCHEDULE, MAX_RETRIES, from_plan_json, to_plan_json

router = APIRouter(tags=["plans"], responses=ERRORS)

MAX_SERVICES = 50

#: The shape `workflows.dunning.from_plan_json` reads, for the schema; that function validates it.
DUNNING_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "retry_offsets_days": {
            "type": "array",
            "maxItems": MAX_RETRIES,
            "items": {"type": "integer", "minimum": 1, "maximum": 365},
            "default": list(DEFAULT_SCHEDULE.retry_offsets_days),
            "description": "Days after the due date, strictly increasing, the last shorter than the billing interval",
        },
        "on_exhausted": {"type": "string", "enum": ["suspend", "cancel"], "default": DEFAULT_SCHEDULE.on_exhausted},
    },
}


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, NoCardNumber] = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    name: CleanText = Field(min_length=1, max_length=200)
    retail_cents: Count = Field(ge=0, le=MAX_CENTS, description="What the service costs without the plan, in cents")
    quantity: Count = Field(default=1, ge=1, le=365, description="How many times per term")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id | None = None
    location_id: Id | None = Field(default=None, description="Offered at one location; unset: at every location")
    name: CleanText = Field(min_length=1, max_length=200)
    price_cents: Count = Field(ge=1, le=MAX_CENTS, description="Fee per interval, in cents")
    enrollment_fee_cents: Count = Field(default=0, ge=0, le=MAX_CENTS)
    interval_months: Annotated[Literal[1, 12], ExactInt] = 1
    term_months: Count = Field(default=12, ge=1, le=120, description="A whole number of intervals")
    auto_renew: Flag = True
    dunning: Annotated[dict[str, Any] | None, WithJsonSchema({"anyOf": [DUNNING_SCHEMA, {"type": "null"}]})] = Field(
        default=None, description='{"retry_offsets_days": [3, 7, 11, 15], "on_exhausted": "suspend" | "cancel"}; unset: the default'
    )
    proration_policy: Literal["prorate", "next_cycle"] = "prorate"
    cancellation_policy: Literal["charge_redeemed", "refund_unused", "none"] = "charge_redeemed"
    services: list[ServiceIn] = Field(default_factory=list, max_length=MAX_SERVICES, description="Each code at most once")


def check_plan(body: PlanIn, location: Location | None) -> None:
    """The plan's rules across fields, and the location's ceiling on its amounts (422 "refused")."""
    if body.term_months < body.interval_months or body.term_months % body.interval_months:
        raise refused("body", f"term_months must be a whole number of intervals ({body.interval_months} months)")
    codes = [s.code for s in body.services]
    if len(codes) != len(set(codes)):
        raise refused("body", "services: each service code may appear once")
    check_amount(location, "price_cents", body.price_cents)
    check_amount(location, "enrollment_fee_cents", body.enrollment_fee_cents)
    for index, service in enumerate(body.services):
        check_amount(location, f"services.{index}.retail_cents", service.retail_cents)


class ServiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    retail_cents: int
    quantity: int


class PlanOut(BaseModel):
    id: str
    location_id: str | None
    name: str
    price_cents: int
    enrollment_fee_cents: int
    interval_months: int
    term_months: int
    auto_renew: bool
    dunning: dict[str, Any]
    proration_policy: str
    cancellation_policy: str
    active: bool
    services: list[ServiceOut]


def plan_out(session: Session, plan: HealthPlan) -> PlanOut:
    services = session.exec(select(PlanService).where(PlanService.plan_id == plan.id).order_by(PlanService.code))
    return PlanOut(
        id=plan.id,
        location_id=plan.location_id,
        name=plan.name,
        price_cents=plan.price_cents,
        enrollment_fee_cents=plan.enrollment_fee_cents,
        interval_months=plan.interval_months,
        term_months=plan.term_months,
        auto_renew=plan.auto_renew,
        dunning=to_plan_json(from_plan_json(plan.dunning, interval_months=plan.interval_months)),
        proration_policy=plan.proration_policy,
        cancellation_policy=plan.cancellation_policy,
        active=plan.active,
        services=[ServiceOut.model_validate(s) for s in services],
    )


@router.post(
    "/plans",
    status_code=201,
    response_model=PlanOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(
        refused="unknown location_id; term_months not a whole number of intervals; a service code twice; a dunning schedule "
        "the billing interval or the card networks do not allow; an amount above the location's max_invoice_cents",
        conflict="a plan with this id already exists",
    ),
)
def create_plan(body: PlanIn, rt: Runtime = Depends(runtime)) -> PlanOut:
    try:
        dunning = None if body.dunning is None else to_plan_json(from_plan_json(body.dunning, interval_months=body.interval_months))
    except ValueError as error:
        raise refused("dunning", str(error)) from None
    plan = HealthPlan(
        id=body.id or new_id("plan"),
        location_id=body.location_id,
        name=body.name,
        price_cents=body.price_cents,
        enrollment_fee_cents=body.enrollment_fee_cents,
        interval_months=body.interval_months,
        term_months=body.term_months,
        auto_renew=body.auto_renew,
        dunning=dunning,
        proration_policy=body.proration_policy,
        cancellation_policy=body.cancellation_policy,
    )
    try:
        with Session(rt.engine, expire_on_commit=False) as session:
            location = None if body.location_id is None else session.get(Location, body.location_id)
            if body.location_id is not None and location is None:
                raise refused("location_id", f"unknown location {body.location_id}")
            check_plan(body, location)
            session.add(plan)
            session.flush()
            for service in body.services:
                session.add(PlanService(id=new_id("svc"), plan_id=plan.id, **service.model_dump()))
            session.commit()
            return plan_out(session, plan)
    except IntegrityError:
        raise conflict("id", f"plan {plan.id} already exists") from None


@router.get("/plans/{plan_id}", response_model=PlanOut)
def read_plan(plan_id: PathId, rt: Runtime = Depends(runtime)) -> PlanOut:
    with Session(rt.engine) as session:
        plan = session.get(HealthPlan, plan_id)
        if plan is None:
            raise not_found("plan_id", f"unknown plan {plan_id}")
        return plan_out(session, plan)
