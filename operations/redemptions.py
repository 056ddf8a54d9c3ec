"""Services redeemed under a subscription: each at most as often per term as its plan includes it,
recorded at its retail value (what an early cancellation under `charge_redeemed` settles).

The term's services are those of the plan version the subscription's term bills (pinned on the row,
moved on at renewal), not the plan's newest: a change of allowance reaches a term at its renewal,
as a price change does."""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from sqlalchemy import func
from sqlmodel import Session, select

from foundation.ids import new_id
from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES
from models.clinic import Location
from models.plans import HealthPlan, PlanService, PlanVersion
from models.subscriptions import ServiceRedemption, Subscription
from operations.plans import ServiceTerms
from operations.refusals import Refusal, conflict


def redeem_service(session: Session, sub: Subscription, service_code: str) -> ServiceRedemption:
    """Record one redemption of `service_code` under `sub` (locked by the caller); refused when the
    subscription is finished, its plan does not include the service, or the term's allowance is used."""
    if sub.status in FINAL_SUBSCRIPTION_STATUSES:
        raise conflict("status", f"the subscription is {sub.status}; services can no longer be redeemed")
    version = pinned_version(session, sub)
    service = term_services(session, sub, version).get(service_code)
    if service is None:
        raise Refusal("service_code", f"plan {sub.plan_id} includes no service {service_code}")
    location = session.get(Location, sub.location_id)
    assert location is not None
    term_months = version.term_months if version is not None else _plan(session, sub).term_months
    since = term_start(sub.start_date, term_months, location.timezone)
    used = session.exec(
        select(func.count())
        .select_from(ServiceRedemption)
        .where(
            ServiceRedemption.subscription_id == sub.id,
            ServiceRedemption.service_code == service.code,
            ServiceRedemption.redeemed_at >= since,  # type: ignore[operator]
        )
    ).one()
    if used >= service.quantity:
        raise conflict("service_code", f"{service.code} was already redeemed {used} time(s) this term (the plan includes {service.quantity})")
    redemption = ServiceRedemption(  # type: ignore[call-arg]  # redeemed_at is the database default, now()
        id=new_id("red"), subscription_id=sub.id, service_code=service.code, retail_cents=service.retail_cents
    )
    session.add(redemption)
    session.flush()
    session.refresh(redemption)
    return redemption


def pinned_version(session: Session, sub: Subscription) -> PlanVersion | None:
    """The plan version the subscription's current term bills (None for a plan without versions)."""
    return session.get(PlanVersion, (sub.plan_id, sub.plan_version))


def term_services(session: Session, sub: Subscription, version: PlanVersion | None) -> dict[str, ServiceTerms]:
    """The services the term includes, by code: its version's (the plan's own, for a version
    written before versions kept their services)."""
    if version is not None and version.services is not None:
        return {service["code"]: ServiceTerms(**service) for service in version.services}
    rows = session.exec(select(PlanService).where(PlanService.plan_id == sub.plan_id)).all()
    return {row.code: ServiceTerms(row.code, row.name, row.retail_cents, row.quantity) for row in rows}


def _plan(session: Session, sub: Subscription) -> HealthPlan:
    plan = session.get(HealthPlan, sub.plan_id)
    assert plan is not None
    return plan


def term_start(start: date, term_months: int, tz: str) -> datetime:
    """The instant the current term began: start date plus whole terms, at local midnight."""
    today = pendulum.now(tz).date()
    months = (today.year - start.year) * 12 + today.month - start.month - (1 if today.day < start.day else 0)
    terms = max(0, months // term_months)
    begin = pendulum.date(start.year, start.month, start.day).add(months=terms * term_months)
    return pendulum.datetime(begin.year, begin.month, begin.day, tz=tz).in_timezone("UTC")
