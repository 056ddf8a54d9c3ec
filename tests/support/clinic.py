"""Builders of clinic data for tests: a location, a client with a pet, a plan, a saved card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy import Engine

from foundation.ids import new_id
from foundation.settings import SANDBOX_OID
from models.clinic import Client, Location, Pet, SavedCard, Terminal
from models.db import session_scope
from models.plans import HealthPlan, PlanService

#: The sandbox's counter devices the tests pay at; a location registers them like a clinic would.
TEST_DEVICES = ("counter-1", "counter-2", "front-desk-1", "front-desk-2")


@dataclass(frozen=True)
class Clinic:
    location_id: str
    client_id: str
    pet_id: str
    plan_id: str


def make_clinic(
    engine: Engine,
    *,
    timezone: str = "America/Chicago",
    price_cents: int = 4_500,
    enrollment_fee_cents: int = 0,
    interval_months: int = 1,
    term_months: int = 12,
    auto_renew: bool = False,
    allow_recurring: bool = True,
    dunning: dict[str, Any] | None = None,
    cancellation_policy: str = "refund_unused",
    proration_policy: str = "prorate",
    oid: str = SANDBOX_OID,
    terminals: tuple[str, ...] = TEST_DEVICES,
) -> Clinic:
    location_id, client_id, pet_id, plan_id = new_id("loc"), new_id("cli"), new_id("pet"), new_id("plan")
    with session_scope(engine) as session:
        session.add(
            Location(
                id=location_id,
                name="Lakeside Animal Hospital",
                timezone=timezone,
                gravity_oid=oid,
                allow_recurring_gravity=allow_recurring,
                charge_time=time(9, 0),
            )
        )
        session.flush()
        for device in terminals:
            session.add(Terminal(id=new_id("term"), location_id=location_id, device_name=device))
        session.add(Client(id=client_id, location_id=location_id, name="Dana Whitfield", email="dana@example.com"))
        session.flush()
        session.add(Pet(id=pet_id, client_id=client_id, name="Biscuit", species="dog"))
        session.add(
            HealthPlan(
                id=plan_id,
                location_id=location_id,
                name="Puppy Wellness",
                price_cents=price_cents,
                enrollment_fee_cents=enrollment_fee_cents,
                interval_months=interval_months,
                term_months=term_months,
                auto_renew=auto_renew,
                dunning=dunning,
                cancellation_policy=cancellation_policy,
                proration_policy=proration_policy,
            )
        )
        session.flush()
        session.add(PlanService(id=new_id("svc"), plan_id=plan_id, code="EXAM", name="Wellness exam", retail_cents=6_500, quantity=2))
    return Clinic(location_id, client_id, pet_id, plan_id)


def add_card(
    engine: Engine,
    clinic: Clinic,
    *,
    gravity_ref: str,
    masked: str = "************1111",
    brand: str = "VS",
    exp_month: int = 12,
    exp_year: int = 2030,
    fingerprint: str | None = None,
    default: bool = True,
    client_id: str | None = None,
) -> str:
    card_id = new_id("card")
    with session_scope(engine) as session:
        session.add(
            SavedCard(
                id=card_id,
                client_id=client_id or clinic.client_id,
                location_id=clinic.location_id,
                gravity_ref=gravity_ref,
                masked_number=masked,
                brand=brand,
                exp_month=exp_month,
                exp_year=exp_year,
                fingerprint=fingerprint or new_id("fp"),
                is_default=default,
            )
        )
    return card_id
