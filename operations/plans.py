"""Plans over their life: a new plan is its own first version; a change of terms is a new version
(new enrollments take it at once, existing subscriptions at their next renewal, never mid-term);
a retired plan takes no new subscriptions, and its subscriptions end at their term's end.

Why retirement ends rather than renews: a clinic retires a plan it no longer sells; the members
finish the term they paid for and are then offered a current plan, not silently renewed on terms
the clinic has withdrawn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from foundation.ids import new_id, plan_stream
from models.clinic import Location
from models.outbox import emit
from models.plans import HealthPlan, PlanService, PlanVersion
from models.subscriptions import Subscription, live_subscription_status
from operations.limits import check_amount
from operations.plan_rules import check_term, checked_dunning
from operations.refusals import Refusal, conflict, not_found


@dataclass(frozen=True)
class ServiceTerms:
    """A service a plan version includes: its retail value and how many times per term."""

    code: str
    name: str
    retail_cents: int
    quantity: int = 1


@dataclass(frozen=True)
class TermsChange:
    """The terms a change sets; None leaves a term as it is. The interval and the location are not
    here: a subscription's calendar and its clinic are built on them."""

    name: str | None = None
    price_cents: int | None = None
    enrollment_fee_cents: int | None = None
    term_months: int | None = None
    auto_renew: bool | None = None
    dunning: dict[str, Any] | None = None
    proration_policy: str | None = None
    cancellation_policy: str | None = None
    services: tuple[ServiceTerms, ...] | None = None  # the whole list; None: unchanged

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


#: The plan's columns a version holds.
VERSIONED = (
    "name",
    "price_cents",
    "enrollment_fee_cents",
    "interval_months",
    "term_months",
    "auto_renew",
    "dunning",
    "proration_policy",
    "cancellation_policy",
)


def version_of(plan: HealthPlan, effective_at: datetime, services: list[dict[str, Any]] | None = None) -> PlanVersion:
    """The plan's current terms (and `services`, its services' snapshot) as a version row."""
    terms = {name: getattr(plan, name) for name in VERSIONED}
    return PlanVersion(plan_id=plan.id, version=plan.version, effective_at=effective_at, services=services, **terms)


def services_of(session: Session, plan_id: str) -> list[dict[str, Any]]:
    """The plan's current services as a version keeps them, by code (sorted here, as `_checked_services`
    sorts a change, so the database's collation cannot make an unchanged list look changed)."""
    rows = sorted(session.exec(select(PlanService).where(PlanService.plan_id == plan_id)).all(), key=lambda row: row.code)
    return [asdict(ServiceTerms(row.code, row.name, row.retail_cents, row.quantity)) for row in rows]


def record_first_version(session: Session, plan: HealthPlan) -> None:
    """A new plan is its own version 1, in effect from its creation."""
    session.add(version_of(plan, plan.created_at or _now(session), services_of(session, plan.id)))


def _checked_services(services: tuple[ServiceTerms, ...]) -> list[dict[str, Any]]:
    """A version's services as stored, refusing a repeated code or an allowance below one."""
    codes = [service.code for service in services]
    repeated = sorted({code for code in codes if codes.count(code) > 1})
    if repeated:
        raise Refusal("services", f"each service code once; repeated: {', '.join(repeated)}")
    for service in services:
        if service.quantity < 1 or service.retail_cents < 0:
            raise Refusal("services", f"service {service.code} needs a quantity of at least 1 and a retail value of at least 0 cents")
    return [asdict(service) for service in sorted(services, key=lambda one: one.code)]


def _replace_services(session: Session, plan_id: str, services: list[dict[str, Any]]) -> None:
    """The plan's services become `services` (what new enrollments and renewals include)."""
    for row in session.exec(select(PlanService).where(PlanService.plan_id == plan_id)).all():
        session.delete(row)
    session.flush()
    for service in services:
        session.add(PlanService(id=new_id("svc"), plan_id=plan_id, **service))


def locked_plan(session: Session, plan_id: str) -> HealthPlan:
    plan = session.exec(select(HealthPlan).where(HealthPlan.id == plan_id).with_for_update()).first()
    if plan is None:
        raise not_found("plan_id", f"unknown plan {plan_id}")
    return plan


def change_terms(session: Session, plan_id: str, change: TermsChange) -> tuple[HealthPlan, bool]:
    """Make `change` the plan's next version; (the plan, whether a version was added). Terms equal
    to the current ones add none, so a repeated request changes nothing."""
    given = change.given()
    services = None if change.services is None else _checked_services(change.services)
    given.pop("services", None)
    if not given and services is None:
        raise Refusal("body", "name at least one term to change")
    plan = locked_plan(session, plan_id)
    location = None if plan.location_id is None else session.get(Location, plan.location_id)
    check_amount(location, "price_cents", change.price_cents)
    check_amount(location, "enrollment_fee_cents", change.enrollment_fee_cents)
    if plan.retired_at is not None:
        raise conflict("plan_id", f"plan {plan.id} was retired on {plan.retired_at.date().isoformat()}; its terms no longer change")
    if "dunning" in given:
        given["dunning"] = checked_dunning(given["dunning"], plan.interval_months)
    check_term(given.get("term_months", plan.term_months), plan.interval_months)
    current_services = services_of(session, plan.id)
    if all(getattr(plan, name) == value for name, value in given.items()) and services in (None, current_services):
        return plan, False
    now = _now(session)
    if session.exec(select(PlanVersion.version).where(PlanVersion.plan_id == plan.id).limit(1)).first() is None:
        record_first_version(session, plan)  # a plan written before versions were kept
    for name, value in given.items():
        setattr(plan, name, value)
    if services is not None:
        _replace_services(session, plan.id, services)
    plan.version += 1
    session.add(plan)
    session.add(version_of(plan, now, current_services if services is None else services))
    emit(
        session,
        type="plan.version_added",
        stream=plan_stream(plan.id),
        payload={
            "version": plan.version,
            "changed": sorted([*given, *(["services"] if services not in (None, current_services) else [])]),
            "price_cents": plan.price_cents,
            "effective_at": now.isoformat(),
        },
        dedupe_key=f"plan.version_added:{plan.id}:{plan.version}",
    )
    return plan, True


def retire(session: Session, plan_id: str) -> tuple[HealthPlan, int]:
    """Retire the plan (once; a repeat changes nothing): no new subscriptions, and each live one
    ends at its term's end. (the plan, how many live subscriptions run on to their term end)."""
    plan = locked_plan(session, plan_id)
    live = int(session.exec(select(func.count()).select_from(Subscription).where(Subscription.plan_id == plan.id, live_subscription_status())).one())
    if plan.retired_at is not None:
        return plan, live
    plan.retired_at = _now(session)
    plan.active = False
    session.add(plan)
    emit(
        session,
        type="plan.retired",
        stream=plan_stream(plan.id),
        payload={"retired_at": plan.retired_at.isoformat(), "live_subscriptions": live, "at_term_end": "ended, not renewed"},
        dedupe_key=f"plan.retired:{plan.id}",
    )
    return plan, live


def versions(session: Session, plan_id: str) -> list[PlanVersion]:
    """The plan's versions, oldest first (a plan written before versions were kept: its one)."""
    plan = session.get(HealthPlan, plan_id)
    if plan is None:
        raise not_found("plan_id", f"unknown plan {plan_id}")
    stored = list(session.exec(select(PlanVersion).where(PlanVersion.plan_id == plan_id).order_by(col(PlanVersion.version))))
    return stored or [version_of(plan, plan.created_at or _now(session))]


@dataclass(frozen=True)
class VersionLine:
    """A version, when the next one took its place (None: the current one), and how many live
    subscriptions bill it in their current term."""

    row: PlanVersion
    effective_until: datetime | None
    subscriptions: int


@dataclass(frozen=True)
class VersionHistory:
    plan: HealthPlan
    lines: list[VersionLine]


def version_history(session: Session, plan_id: str, *, reach: frozenset[str] | None = None) -> VersionHistory:
    """The plan and its versions, oldest first, as the API and the CLI both list them; the live
    subscriptions counted are those at the locations in `reach` (None: every location)."""
    rows = versions(session, plan_id)
    plan = session.get(HealthPlan, plan_id)
    assert plan is not None
    counts = live_subscriptions_per_version(session, plan_id, reach=reach)
    following = [row.effective_at for row in rows[1:]] + [None]
    return VersionHistory(plan, [VersionLine(row, until, counts.get(row.version, 0)) for row, until in zip(rows, following, strict=True)])


def live_subscriptions_per_version(session: Session, plan_id: str, *, reach: frozenset[str] | None = None) -> dict[int, int]:
    """How many live subscriptions of the plan, at the locations in `reach`, bill each version in their current term."""
    query = select(Subscription.plan_version, func.count()).where(Subscription.plan_id == plan_id, live_subscription_status())
    if reach is not None:
        query = query.where(col(Subscription.location_id).in_(sorted(reach)))
    query = query.group_by(col(Subscription.plan_version))
    return {int(version): int(count) for version, count in session.exec(query)}


def _now(session: Session) -> datetime:
    """The database's clock (the transaction's start), so every stamp of a change agrees."""
    stamp: datetime = session.exec(select(func.now())).one()
    return stamp
