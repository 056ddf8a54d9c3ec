"""Health plans: price, interval, term, dunning schedule, cancellation terms and included services,
over their life: a change of terms is a new version (subscriptions take it at their next renewal,
never mid-term), and a retired plan takes no new subscriptions.

The dunning schedule is validated with the same code the workflow uses (`workflows.dunning`, through
`operations.plan_rules`), so a plan that could not be billed is never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, conflict, from_refusal, refusals, refused
from api.fields import MAX_CENTS, CleanText, Count, ExactInt, Flag, Id, NoCardNumber, PathId
from api.limits import check_amount
from api.reach import body_location_reached, load_reached, require_all_locations
from foundation.ids import new_id
from foundation.scopes import Caller
from models.clinic import Location
from models.db import session_scope
from models.plans import HealthPlan, PlanService, PlanVersion
from operations import plans as plan_ops
from operations.audit import Subject, record
from operations.plan_rules import MAX_PLAN_NAME, check_term, checked_dunning
from operations.refusals import Refusal
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
    name: CleanText = Field(min_length=1, max_length=MAX_PLAN_NAME)
    retail_cents: Count = Field(ge=0, le=MAX_CENTS, description="What the service costs without the plan, in cents")
    quantity: Count = Field(default=1, ge=1, le=365, description="How many times per term")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.PLAN_IN))
    id: Id | None = None
    location_id: Id | None = Field(default=None, description="Offered at one location; unset: at every location")
    name: CleanText = Field(min_length=1, max_length=MAX_PLAN_NAME)
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
    try:
        check_term(body.term_months, body.interval_months)
    except Refusal as error:
        raise from_refusal(error) from None
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


class PlanTermsOut(BaseModel):
    """The terms a plan and each of its versions carry, read alike from a plan row or a version row."""

    name: str
    price_cents: int
    enrollment_fee_cents: int
    interval_months: int
    term_months: int
    auto_renew: bool
    dunning: dict[str, Any]
    proration_policy: str
    cancellation_policy: str

    @staticmethod
    def terms_of(row: HealthPlan | PlanVersion) -> dict[str, Any]:
        """The terms of a plan or version row, the dunning schedule spelled out (the default when unset)."""
        terms = {name: getattr(row, name) for name in PlanTermsOut.model_fields}
        return {**terms, "dunning": to_plan_json(from_plan_json(row.dunning, interval_months=row.interval_months))}


class _PlanKey(BaseModel):
    """What a plan's answer shows before its terms (a base of its own, so the keys keep their place)."""

    id: str
    location_id: str | None


class PlanOut(PlanTermsOut, _PlanKey):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PLAN))
    active: bool
    version: int = Field(description="The current version: new enrollments take it, subscriptions at their next renewal")
    retired_at: datetime | None = Field(description="Set once retired: no new subscriptions; live ones end at their term's end")
    services: list[ServiceOut]


def services_of(session: Session, plan_ids: list[str]) -> dict[str, list[PlanService]]:
    """Each plan's services in code order, for many plans in one query."""
    found: dict[str, list[PlanService]] = {plan_id: [] for plan_id in plan_ids}
    if plan_ids:
        for service in session.exec(select(PlanService).where(col(PlanService.plan_id).in_(plan_ids)).order_by(PlanService.plan_id, PlanService.code)):
            found[service.plan_id].append(service)
    return found


def plan_out(session: Session, plan: HealthPlan, services: list[PlanService] | None = None) -> PlanOut:
    """The plan as the API shows it; `services` when the caller already read them (a page of plans)."""
    if services is None:
        services = services_of(session, [plan.id]).get(plan.id, [])
    return PlanOut(
        id=plan.id,
        location_id=plan.location_id,
        **PlanTermsOut.terms_of(plan),
        active=plan.active,
        version=plan.version,
        retired_at=plan.retired_at,
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
def create_plan(body: PlanIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> PlanOut:
    if body.location_id is None:
        require_all_locations(caller, "POST /plans for every location")
    body_location_reached(caller, body.location_id)
    try:
        dunning = checked_dunning(body.dunning, body.interval_months)
    except Refusal as error:
        raise from_refusal(error) from None
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
            session.refresh(plan)
            plan_ops.record_first_version(session, plan)
            record(session, caller.actor, "plan.create", Subject("plan", plan.id, plan.location_id))
            session.commit()
            return plan_out(session, plan)
    except IntegrityError:
        raise conflict("id", f"plan {plan.id} already exists") from None


@router.get("/plans/{plan_id}", response_model=PlanOut)
def read_plan(plan_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> PlanOut:
    with Session(rt.engine) as session:
        return plan_out(session, load_reached(session, caller, HealthPlan, plan_id, "plan_id", "plan"))


def _plan_to_change(rt: Runtime, caller: Caller, plan_id: str, what: str) -> None:
    """404 for a plan out of the caller's reach; a plan for every location changes only with a token that reaches them all."""
    with Session(rt.engine) as session:
        plan = load_reached(session, caller, HealthPlan, plan_id, "plan_id", "plan")
    if plan.location_id is None:
        require_all_locations(caller, what)


class PlanTermsIn(BaseModel):
    """The terms to change; an unset term stays. The location is not versioned; services, when given,
    replace the plan's services in the new version."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.PLAN_TERMS_IN))
    name: CleanText | None = Field(default=None, min_length=1, max_length=MAX_PLAN_NAME)
    price_cents: Count | None = Field(default=None, ge=1, le=MAX_CENTS, description="Fee per interval, in cents")
    enrollment_fee_cents: Count | None = Field(default=None, ge=0, le=MAX_CENTS)
    interval_months: Annotated[Literal[1, 12], ExactInt] | None = Field(
        default=None, description="Never changes (subscriptions' calendars are built on it); accepted when equal to the plan's"
    )
    term_months: Count | None = Field(default=None, ge=1, le=120, description="A whole number of intervals")
    auto_renew: Flag | None = None
    dunning: Annotated[dict[str, Any] | None, WithJsonSchema({"anyOf": [DUNNING_SCHEMA, {"type": "null"}]})] = Field(
        default=None, description="The whole schedule; unset: unchanged"
    )
    proration_policy: Literal["prorate", "next_cycle"] | None = None
    cancellation_policy: Literal["charge_redeemed", "refund_unused", "none"] | None = None
    services: list[ServiceIn] | None = Field(
        default=None,
        max_length=MAX_SERVICES,
        description="The whole list of included services, each code once (a running term keeps its version's); unset: unchanged",
    )

    def change(self) -> plan_ops.TermsChange:
        terms = self.model_dump(exclude={"interval_months", "services"})
        services = None if self.services is None else tuple(plan_ops.ServiceTerms(**service.model_dump()) for service in self.services)
        return plan_ops.TermsChange(**terms, services=services)


@router.patch(
    "/plans/{plan_id}",
    response_model=PlanOut,
    responses=refusals(
        refused="no term given; interval_months other than the plan's; term_months not a whole number of intervals; a dunning "
        "schedule the billing interval or the card networks do not allow; an amount above the location's max_invoice_cents",
        conflict="the plan was retired",
    ),
)
def change_plan_terms(plan_id: PathId, body: PlanTermsIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> PlanOut:
    """Change a plan's terms: a new version, in effect at once for new enrollments and from each
    live subscription's next renewal (a term already running keeps its price). Terms equal to the
    current ones add no version."""
    _plan_to_change(rt, caller, plan_id, "PATCH of a plan for every location")
    try:
        with session_scope(rt.engine) as session:
            current = session.get(HealthPlan, plan_id)
            if current is not None:
                _check_terms_in(body, current)
            plan, _ = plan_ops.change_terms(session, plan_id, body.change())
            record(session, caller.actor, "plan.change_terms", Subject("plan", plan.id, plan.location_id))
            return plan_out(session, plan)
    except Refusal as error:
        raise from_refusal(error) from None


def _check_terms_in(body: PlanTermsIn, plan: HealthPlan) -> None:
    """What the API alone checks of a change: the interval stays (the body may name it; the
    operation, which checks the amounts against the location's ceiling, never takes it)."""
    if body.interval_months is not None and body.interval_months != plan.interval_months:
        raise refused("interval_months", f"a plan's billing interval never changes ({plan.interval_months} months); create a new plan")


class RetiredOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.RETIRED))
    plan: PlanOut
    live_subscriptions: int = Field(description="Subscriptions that run on to their term's end and then end (not renewed)")


@router.post(
    "/plans/{plan_id}/retire",
    response_model=RetiredOut,
    dependencies=[Depends(idempotency_key)],
)
def retire_plan(plan_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> RetiredOut:
    """Retire a plan: it takes no new enrollments or plan changes (409 naming plan_id); each live
    subscription bills on to its term's end and then ends, not renewed (`subscription.ended`).
    Emits `plan.retired`; retiring again changes nothing."""
    _plan_to_change(rt, caller, plan_id, "retiring a plan for every location")
    try:
        with session_scope(rt.engine) as session:
            plan, live = plan_ops.retire(session, plan_id)
            record(session, caller.actor, "plan.retire", Subject("plan", plan.id, plan.location_id))
            return RetiredOut(plan=plan_out(session, plan), live_subscriptions=live)
    except Refusal as error:
        raise from_refusal(error) from None


class _VersionKey(BaseModel):
    """What a version's line shows before its terms (a base of its own, so the keys keep their place)."""

    version: int
    effective_from: datetime = Field(description="New enrollments took it from here; a subscription from its first renewal after")
    effective_until: datetime | None = Field(description="When the next version took its place (null: the current one)")


class PlanVersionOut(PlanTermsOut, _VersionKey):
    subscriptions: int = Field(description="Live subscriptions whose current term bills this version")


class PlanVersionsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PLAN_VERSIONS))
    plan_id: str
    current_version: int
    retired_at: datetime | None
    versions: list[PlanVersionOut]


@router.get("/plans/{plan_id}/versions", response_model=PlanVersionsOut)
def list_plan_versions(plan_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> PlanVersionsOut:
    """A plan's versions, oldest first, with the dates each was in effect and how many live
    subscriptions bill it now."""
    with Session(rt.engine) as session:
        load_reached(session, caller, HealthPlan, plan_id, "plan_id", "plan")
        try:
            history = plan_ops.version_history(session, plan_id, reach=caller.reach)
        except Refusal as error:
            raise from_refusal(error) from None
        return PlanVersionsOut(
            plan_id=plan_id,
            current_version=history.plan.version,
            retired_at=history.plan.retired_at,
            versions=[_version_out(line) for line in history.lines],
        )


def _version_out(line: plan_ops.VersionLine) -> PlanVersionOut:
    row = line.row
    return PlanVersionOut(
        version=row.version,
        effective_from=row.effective_at,
        effective_until=line.effective_until,
        **PlanTermsOut.terms_of(row),
        subscriptions=line.subscriptions,
    )
