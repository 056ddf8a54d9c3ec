"""The rules a plan obeys, written once: which plan a subscription may join or move to, and which
terms a plan may have. Enrollment, the plan-change command (its API route, its CLI command and its
activity) and the plan routes all call these, and each raises a `Refusal` naming the field."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.plans import HealthPlan, terms_of
from operations.refusals import Refusal, conflict
from workflows.dunning import from_plan_json, to_plan_json

#: The longest name a plan may have (the API's schema and the CLI both check it).
MAX_PLAN_NAME = 200


def plan_offered(session: Session, plan_id: str, location_id: str) -> HealthPlan:
    """The plan a subscription at `location_id` may join or move to: known, not retired, offered
    there, and billable (its dunning schedule valid)."""
    plan = session.get(HealthPlan, plan_id)
    if plan is None or (not plan.active and plan.retired_at is None):
        raise Refusal("plan_id", f"unknown or inactive plan {plan_id}")
    if plan.retired_at is not None:
        raise conflict("plan_id", f"plan {plan.id} was retired on {plan.retired_at.date().isoformat()}; it takes no new subscriptions")
    if plan.location_id not in (None, location_id):
        raise Refusal("plan_id", f"plan {plan.id} is not offered at location {location_id}")
    try:
        terms_of(plan)
    except ValueError as error:
        raise Refusal("plan_id", f"plan {plan.id} has an invalid dunning schedule: {error}") from None
    return plan


def check_same_interval(old_interval_months: int, new_plan: HealthPlan) -> None:
    """A plan change keeps the billing interval: the subscription's calendar is built on it."""
    if new_plan.interval_months != old_interval_months:
        raise Refusal("plan_id", "a plan change keeps the billing interval; cancel and enroll for a different interval")


def check_term(term_months: int, interval_months: int) -> None:
    """A term is a whole number of billing intervals."""
    if term_months < interval_months or term_months % interval_months:
        raise Refusal("term_months", f"term_months must be a whole number of intervals ({interval_months} months)")


def checked_dunning(dunning: dict[str, Any] | None, interval_months: int) -> dict[str, Any] | None:
    """The dunning schedule as stored (None: the default), validated by the code the workflow uses."""
    if dunning is None:
        return None
    try:
        return to_plan_json(from_plan_json(dunning, interval_months=interval_months))
    except ValueError as error:
        raise Refusal("dunning", str(error)) from None
