"""Subscriptions (one per pet and plan) and the services redeemed under them.

The row mirrors what the subscription's workflow decided (status, period, next due); the workflow is
the one writer, through activities.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Date, SmallInteger, Text
from sqlmodel import Field, Session, SQLModel, select

from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES, SubscriptionStatus
from models.columns import cents, fk, tz

SUBSCRIPTION_STATUSES = tuple(SubscriptionStatus)


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in SUBSCRIPTION_STATUSES) + ")",
            name="ck_subscription_status",
        ),
        CheckConstraint("anchor_day BETWEEN 1 AND 31", name="ck_subscription_anchor_day"),
    )
    id: str = Field(primary_key=True)
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    pet_id: str = Field(sa_column=fk("pet_id", "pet.id"))
    plan_id: str = Field(sa_column=fk("plan_id", "health_plan.id"))
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    card_id: str | None = Field(default=None, sa_column=fk("card_id", "saved_card.id", nullable=True))
    start_date: date = Field(sa_column=Column("start_date", Date, nullable=False))
    anchor_day: int = Field(sa_column=Column("anchor_day", SmallInteger, nullable=False))
    status: str = Field(default=SubscriptionStatus.PENDING, sa_column=Column("status", Text, nullable=False, index=True))
    term_end: date | None = Field(default=None, sa_column=Column("term_end", Date, nullable=True))
    cancel_at_term_end: bool = False
    next_due_at: datetime | None = Field(default=None, sa_column=tz("next_due_at", nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_column=tz("cancelled_at", nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    updated_at: datetime | None = Field(default=None, sa_column=tz("updated_at", now_default=True))


class ServiceRedemption(SQLModel, table=True):
    """A plan service the clinic delivered under a subscription, valued at retail for settlement."""

    __tablename__ = "service_redemption"
    id: str = Field(primary_key=True)
    subscription_id: str = Field(sa_column=fk("subscription_id", "subscription.id"))
    service_code: str
    retail_cents: int = Field(sa_column=cents("retail_cents"))
    redeemed_at: datetime = Field(sa_column=tz("redeemed_at", now_default=True))


def live_subscription_ids(session: Session, location_id: str) -> list[str]:
    """The location's subscriptions that can still bill (neither cancelled nor ended)."""
    return list(
        session.exec(
            select(Subscription.id).where(
                Subscription.location_id == location_id,
                Subscription.status.not_in(FINAL_SUBSCRIPTION_STATUSES),  # type: ignore[attr-defined]
            )
        )
    )
