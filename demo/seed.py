"""The demo's clinic group: locations in three US time zones, plans, clients, pets and saved cards.

Cards are saved the way the product saves them (tokenized at Gravity, only the reference kept);
which clients get a troublesome card is drawn from the seed, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from sqlalchemy import Engine

from foundation.settings import SANDBOX_OID
from gravity.client import GravityClient
from gravity.conventions import APPROVED_MASTERCARD, APPROVED_VISA
from models.clinic import Client, Location, Pet, SavedCard, Terminal
from models.db import session_scope
from models.plans import HealthPlan, PlanService

LOCATIONS = (
    ("loc_brooklyn", "Brooklyn Pet Clinic", "America/New_York"),
    ("loc_austin", "Austin Animal Hospital", "America/Chicago"),
    ("loc_portland", "Portland Vet Care", "America/Los_Angeles"),
)
FIRST_NAMES = ("Avery", "Jordan", "Riley", "Casey", "Morgan", "Quinn", "Harper", "Rowan", "Emerson", "Parker", "Reese", "Skyler")
LAST_NAMES = ("Garcia", "Nguyen", "Patel", "Okafor", "Schmidt", "Rossi", "Kim", "Haddad", "Silva", "Novak", "Larsen", "Cohen")
PET_NAMES = ("Biscuit", "Luna", "Milo", "Pepper", "Olive", "Ziggy", "Maple", "Scout", "Juniper", "Waffles")
GOOD_CARDS = (APPROVED_VISA, APPROVED_MASTERCARD)

# What can happen to a client in the demo year, and how often (the rest are ordinary).
ROLES = ("soft_decline", "hard_decline", "exhausted", "cancel_settlement", "yearly")


@dataclass
class DemoClient:
    client_id: str
    location_id: str
    timezone: str
    pet_id: str
    plan_id: str
    card_id: str
    card_ref: str
    start_date: date
    role: str = "ordinary"
    spare_card_id: str | None = None
    notes: list[str] = field(default_factory=list)


def seed_clinics(engine: Engine, *, months: int) -> dict[str, dict[str, str]]:
    """Locations, terminals and plans; returns plan ids by location and kind."""
    plans: dict[str, dict[str, str]] = {}
    with session_scope(engine) as session:
        for location_id, name, tz in LOCATIONS:
            session.add(Location(id=location_id, name=name, timezone=tz, gravity_oid=SANDBOX_OID, charge_time=time(9, 0)))
            session.flush()
            session.add(Terminal(id=f"{location_id}_t1", location_id=location_id, device_name="front-desk-1", label="Front desk"))
            monthly, yearly = f"{location_id}_monthly", f"{location_id}_yearly"
            session.add(
                HealthPlan(
                    id=monthly,
                    location_id=location_id,
                    name="Wellness Monthly",
                    price_cents=4_500,
                    enrollment_fee_cents=2_500,
                    interval_months=1,
                    term_months=months,
                    auto_renew=False,
                    cancellation_policy="refund_unused",
                )
            )
            session.add(
                HealthPlan(
                    id=yearly,
                    location_id=location_id,
                    name="Wellness Annual",
                    price_cents=48_000,
                    interval_months=12,
                    term_months=12,
                    auto_renew=False,
                    cancellation_policy="charge_redeemed",
                )
            )
            session.flush()
            for plan_id in (monthly, yearly):
                session.add(PlanService(id=f"{plan_id}_exam", plan_id=plan_id, code="EXAM", name="Wellness exam", retail_cents=6_500, quantity=2))
                session.add(PlanService(id=f"{plan_id}_vax", plan_id=plan_id, code="VAX", name="Core vaccines", retail_cents=8_900, quantity=1))
            plans[location_id] = {"monthly": monthly, "yearly": yearly}
    return plans


def assign_roles(count: int, rng: random.Random) -> list[str]:
    """At least one of every story the report should show, the rest mostly ordinary."""
    roles = ["soft_decline", "hard_decline", "exhausted", "cancel_settlement", "yearly"][: max(0, count)]
    while len(roles) < count:
        draw = rng.random()
        roles.append("soft_decline" if draw < 0.15 else "yearly" if draw < 0.27 else "ordinary")
    rng.shuffle(roles)
    return roles


async def seed_clients(
    engine: Engine, gravity: GravityClient, plans: dict[str, dict[str, str]], *, count: int, first_day: date, rng: random.Random
) -> list[DemoClient]:
    """Draw every client from `rng` in order (so a seed plays the same year), then save their cards
    at the sandbox a few at a time and write the rows in one transaction: one by one, 500 clients
    took longer than a year of their billing."""
    drawn = [_draw(index, role, rng) for index, role in enumerate(assign_roles(count, rng))]
    with session_scope(engine) as session:
        for person in drawn:
            session.add(Client(id=person.client_id, location_id=person.location_id, name=person.name, email=f"{person.client_id}@example.com"))
        session.flush()
        for person in drawn:
            session.add(Pet(id=person.pet_id, client_id=person.client_id, name=person.pet_name, species=person.species))
    at_once = asyncio.Semaphore(SAVING_AT_ONCE)

    async def cards_of(person: _Drawn) -> tuple[SavedCard, SavedCard | None]:
        async with at_once:
            card = await tokenized_card(gravity, person.client_id, person.location_id, person.number, default=True)
            if person.role not in ("hard_decline", "exhausted"):
                return card, None
            other = APPROVED_MASTERCARD if person.number != APPROVED_MASTERCARD else APPROVED_VISA
            return card, await tokenized_card(gravity, person.client_id, person.location_id, other, default=False)

    cards = await asyncio.gather(*(cards_of(person) for person in drawn))
    with session_scope(engine) as session:
        for card, spare in cards:
            session.add(card)
            if spare is not None:
                session.add(spare)
    clients = []
    for person, (card, spare) in zip(drawn, cards, strict=True):
        kind = "yearly" if person.role == "yearly" else "monthly"
        plan_id = plans[person.location_id][kind]
        spare_id = spare.id if spare else None
        start = first_day + person.offset
        where = (person.client_id, person.location_id, person.timezone, person.pet_id, plan_id)
        clients.append(DemoClient(*where, card.id, card.gravity_ref, start, person.role, spare_id))
    return clients


SAVING_AT_ONCE = 16


@dataclass(frozen=True)
class _Drawn:
    """One client as drawn from the seed, before anything is saved."""

    client_id: str
    pet_id: str
    location_id: str
    timezone: str
    role: str
    name: str
    number: str
    pet_name: str
    species: str
    offset: timedelta


def _draw(index: int, role: str, rng: random.Random) -> _Drawn:
    """The draws in the order the demo has always made them."""
    location_id, _, tz = LOCATIONS[index % len(LOCATIONS)]
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    number = rng.choice(GOOD_CARDS)
    pet_name, species = rng.choice(PET_NAMES), rng.choice(("dog", "cat"))
    offset = timedelta(days=rng.randrange(0, 28))
    return _Drawn(f"cli_demo_{index:04d}", f"pet_demo_{index:04d}", location_id, tz, role, name, number, pet_name, species, offset)


async def tokenized_card(gravity: GravityClient, client_id: str, location_id: str, number: str, *, default: bool) -> SavedCard:
    """Tokenize a test card at the sandbox; the row keeps only what Gravity returns (not yet added)."""
    result = await gravity.tokenize(card_number=number, exp_mmyy="1230", external_id=str(uuid.uuid4()))
    if result.card_ref is None:
        raise RuntimeError(f"the sandbox did not save a test card: {result.result_message}")
    card_id = f"card_{uuid.uuid4().hex[:16]}"
    return SavedCard(
        id=card_id,
        client_id=client_id,
        location_id=location_id,
        gravity_ref=result.card_ref,
        masked_number=result.masked_account or "",
        brand=result.card_brand or "VS",
        exp_month=12,
        exp_year=2030,
        fingerprint=result.fingerprint or card_id,
        is_default=default,
    )
