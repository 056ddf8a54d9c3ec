"""Health plans: what a client buys, what it costs, how failed charges are retried.

The dunning schedule is data on the plan (JSON: retry offsets in days after the failed due date and
what happens when they run out); `workflows/dunning.py` reads it through the contracts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, PrimaryKeyConstraint, SmallInteger, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from foundation.contracts import PlanTerms
from models.columns import cents, fk, tz
from workflows.dunning import from_plan_json, validate_schedule


class HealthPlan(SQLModel, table=True):
    """A wellness plan offered at a location (or group-wide when `location_id` is null)."""

    __tablename__ = "health_plan"
    __table_args__ = (
        CheckConstraint("interval_months IN (1, 12)", name="ck_health_plan_interval"),
        CheckConstraint("term_months >= interval_months", name="ck_health_plan_term"),
        CheckConstraint("proration_policy IN ('prorate', 'next_cycle')", name="ck_health_plan_proration"),
        CheckConstraint(
            "cancellation_policy IN ('charge_redeemed', 'refund_unused', 'none')",
            name="ck_health_plan_cancellation",
        ),
    )
    id: str = Field(primary_key=True)
    location_id: str | None = Field(default=None, sa_column=fk("location_id", "location.id", nullable=True))
    name: str
    price_cents: int = Field(sa_column=cents("price_cents"))
    enrollment_fee_cents: int = Field(default=0, sa_column=cents("enrollment_fee_cents", default=0))
    interval_months: int = Field(default=1, sa_column=Column("interval_months", SmallInteger, nullable=False))
    term_months: int = Field(default=12, sa_column=Column("term_months", SmallInteger, nullable=False))
    auto_renew: bool = True
    dunning: dict[str, Any] | None = Field(default=None, sa_column=Column("dunning", JSONB, nullable=True))
    proration_policy: str = "prorate"
    cancellation_policy: str = "charge_redeemed"
    active: bool = True
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    # The current version's number: the terms above are that version's (`PlanVersion` keeps them all).
    version: int = Field(default=1, sa_column=Column("version", Integer, nullable=False, server_default="1"))
    # Set when the plan was retired: it takes no new enrollments and its subscriptions end at term end.
    retired_at: datetime | None = Field(default=None, sa_column=tz("retired_at", nullable=True))


class PlanVersion(SQLModel, table=True):
    """A plan's terms from `effective_at` on: new enrollments take the newest version at once, a
    subscription takes it at its next renewal (never mid-term)."""

    __tablename__ = "plan_version"
    __table_args__ = (PrimaryKeyConstraint("plan_id", "version", name="pk_plan_version"),)
    plan_id: str = Field(sa_column=Column("plan_id", Text, ForeignKey("health_plan.id", ondelete="RESTRICT"), nullable=False))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    name: str = Field(sa_column=Column("name", Text, nullable=False))
    price_cents: int = Field(sa_column=cents("price_cents"))
    enrollment_fee_cents: int = Field(sa_column=cents("enrollment_fee_cents"))
    interval_months: int = Field(sa_column=Column("interval_months", SmallInteger, nullable=False))
    term_months: int = Field(sa_column=Column("term_months", SmallInteger, nullable=False))
    auto_renew: bool
    dunning: dict[str, Any] | None = Field(default=None, sa_column=Column("dunning", JSONB, nullable=True))
    proration_policy: str = Field(sa_column=Column("proration_policy", Text, nullable=False))
    cancellation_policy: str = Field(sa_column=Column("cancellation_policy", Text, nullable=False))
    effective_at: datetime = Field(sa_column=tz("effective_at"))
    # The services this version includes, each {code, name, retail_cents, quantity} (quantity: times
    # per term); None for a version written before they were kept (the plan's services then apply).
    services: list[dict[str, Any]] | None = Field(default=None, sa_column=Column("services", JSONB, nullable=True))


class PlanService(SQLModel, table=True):
    """A service included in a plan, with its retail value (what it would cost without the plan)."""

    __tablename__ = "plan_service"
    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_plan_service_code"),)
    id: str = Field(primary_key=True)
    plan_id: str = Field(sa_column=fk("plan_id", "health_plan.id"))
    code: str
    name: str
    retail_cents: int = Field(sa_column=cents("retail_cents"))
    quantity: int = Field(
        default=1, sa_column=Column("quantity", SmallInteger, CheckConstraint("quantity > 0", name="ck_plan_service_quantity"), nullable=False)
    )


def terms_of(plan: HealthPlan) -> PlanTerms:
    """The snapshot of a plan a subscription workflow carries (validated dunning included)."""
    schedule = validate_schedule(from_plan_json(plan.dunning, interval_months=plan.interval_months), interval_months=plan.interval_months)
    return PlanTerms(
        plan_id=plan.id,
        price_cents=plan.price_cents,
        enrollment_fee_cents=plan.enrollment_fee_cents,
        interval_months=plan.interval_months,
        term_months=plan.term_months,
        auto_renew=plan.auto_renew,
        dunning_offsets_days=list(schedule.retry_offsets_days),
        dunning_on_exhausted=schedule.on_exhausted,
        proration_policy=plan.proration_policy,
        cancellation_policy=plan.cancellation_policy,
    )
