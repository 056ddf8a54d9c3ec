"""Many subscriptions at one clinic, set up fast, for the benchmark, the chaos run and the scale-out test.

The clinic and its clients are written in bulk; cards are saved the way the product saves them
(tokenized at the sandbox, only Gravity's reference kept); each subscription row is recorded with the
product's own `record_enrollment` (validation included), and its workflow is started exactly as
`operations.enrollment.enroll` starts it. Recording and starting are separate so the benchmark can time
only the part that bills.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import pendulum
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from foundation.contracts import SubscriptionInput
from foundation.ids import subscription_workflow_id
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.conventions import APPROVED_MASTERCARD, APPROVED_VISA
from models.clinic import Client as ClinicClient, Location, Pet, SavedCard, Terminal
from models.db import session_scope
from models.plans import HealthPlan
from operations.enrollment import EnrollRequest, record_enrollment, starting_search_attributes
from workflows.subscription import SubscriptionWorkflow

TIMEZONE = "America/Chicago"
PRICE_CENTS = 4_500
BENCH_DEVICES = ("counter-1", "counter-2", "counter-3")  # the sandbox counters chaos pays at


@dataclass(frozen=True)
class Member:
    """One enrolled subscription and the card it bills."""

    subscription_id: str
    card_ref: str
    start_date: date
    workflow_input: SubscriptionInput


def local_today(tz: str = TIMEZONE) -> date:
    return pendulum.now(tz).date()


def seed_clinic(engine: Engine, tag: str, *, term_months: int, price_cents: int = PRICE_CENTS, dunning: dict[str, Any] | None = None) -> tuple[str, str]:
    """One location (charges at 09:00 local) and one monthly plan; returns (location id, plan id)."""
    location_id, plan_id = f"loc_{tag}", f"plan_{tag}"
    with session_scope(engine) as session:
        session.add(Location(id=location_id, name=f"Bench clinic {tag}", timezone=TIMEZONE, gravity_oid=SANDBOX_OID, charge_time=time(9, 0)))
        session.flush()
        for device in BENCH_DEVICES:  # a terminal payment goes only to a device its location registered
            session.add(Terminal(id=f"{location_id}_{device}", location_id=location_id, device_name=device))
        session.add(
            HealthPlan(
                id=plan_id,
                location_id=location_id,
                name="Wellness Monthly",
                price_cents=price_cents,
                enrollment_fee_cents=0,
                interval_months=1,
                term_months=term_months,
                auto_renew=False,
                dunning=dunning,
                cancellation_policy="refund_unused",
            )
        )
    return location_id, plan_id


def seed_second_plan(engine: Engine, location_id: str, plan_id: str, *, price_cents: int) -> str:
    """A copy of `plan_id` at another price (same interval and term), so plan changes prorate; returns its id."""
    second_id = f"{plan_id}_plus"
    with session_scope(engine) as session:
        plan = session.get(HealthPlan, plan_id)
        assert plan is not None
        session.add(
            HealthPlan(
                id=second_id,
                location_id=location_id,
                name="Wellness Plus",
                price_cents=price_cents,
                enrollment_fee_cents=plan.enrollment_fee_cents,
                interval_months=plan.interval_months,
                term_months=plan.term_months,
                auto_renew=plan.auto_renew,
                dunning=plan.dunning,
                cancellation_policy=plan.cancellation_policy,
            )
        )
    return second_id


async def save_spare_cards(engine: Engine, gravity_url: str, members: Sequence[Member], *, concurrency: int = 16) -> dict[str, str]:
    """A second saved card (not the default) for each member's client, tokenized at the sandbox as
    the product saves cards; returns the card id by subscription id."""
    gate = asyncio.Semaphore(concurrency)
    async with GravityClient(gravity_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:

        async def tokenize() -> Any:
            async with gate:
                return await gravity.tokenize(
                    card_number=APPROVED_MASTERCARD,  # a Mastercard beside each client's Visa, for card changes
                    exp_mmyy="1230",
                    external_id=str(uuid.uuid4()),
                )

        tokens = await asyncio.gather(*(tokenize() for _ in members))
    cards: dict[str, str] = {}
    with session_scope(engine) as session:
        for member, token in zip(members, tokens, strict=True):
            assert token.card_ref is not None, token.result_message
            setup = member.workflow_input.setup
            card_id = f"card2_{setup.subscription_id.removeprefix('sub_')}"
            session.add(
                SavedCard(
                    id=card_id,
                    client_id=setup.client_id,
                    location_id=setup.location_id,
                    gravity_ref=token.card_ref,
                    masked_number=token.masked_account or "",
                    brand=token.card_brand or "MC",
                    exp_month=12,
                    exp_year=2030,
                    fingerprint=token.fingerprint or card_id,
                    is_default=False,
                )
            )
            cards[setup.subscription_id] = card_id
    return cards


async def enroll_members(
    engine: Engine, gravity_url: str, tag: str, *, location_id: str, plan_id: str, start_dates: Sequence[date], concurrency: int = 16
) -> list[Member]:
    """A client, pet and saved card per start date, and its subscription row (no workflow yet)."""
    count = len(start_dates)
    ids = [f"{tag}_{i:05d}" for i in range(count)]
    with session_scope(engine) as session:
        for key in ids:
            session.add(ClinicClient(id=f"cli_{key}", location_id=location_id, name=f"Client {key}", email=f"{key}@example.com"))
        session.flush()
        for key in ids:
            session.add(Pet(id=f"pet_{key}", client_id=f"cli_{key}", name="Biscuit", species="dog"))
    gate = asyncio.Semaphore(concurrency)
    async with GravityClient(gravity_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:

        async def tokenize() -> Any:
            async with gate:
                return await gravity.tokenize(card_number=APPROVED_VISA, exp_mmyy="1230", external_id=str(uuid.uuid4()))

        tokens = await asyncio.gather(*(tokenize() for _ in ids))
    with session_scope(engine) as session:
        for key, token in zip(ids, tokens, strict=True):
            assert token.card_ref is not None, token.result_message
            session.add(
                SavedCard(
                    id=f"card_{key}",
                    client_id=f"cli_{key}",
                    location_id=location_id,
                    gravity_ref=token.card_ref,
                    masked_number=token.masked_account or "",
                    brand=token.card_brand or "VS",
                    exp_month=12,
                    exp_year=2030,
                    fingerprint=token.fingerprint or key,
                    is_default=True,
                )
            )
    members = []
    for key, token, start in zip(ids, tokens, start_dates, strict=True):
        request = EnrollRequest(f"cli_{key}", f"pet_{key}", plan_id, location_id, start, card_id=f"card_{key}", subscription_id=f"sub_{key}")
        workflow_input, _ = await asyncio.to_thread(record_enrollment, engine, request)
        members.append(Member(f"sub_{key}", token.card_ref, start, workflow_input))
    return members


async def start_workflows(client: Client, members: Sequence[Member], *, task_queue: str, concurrency: int = 64) -> None:
    """Start each member's subscription workflow as `enroll` does (same id, policies, attributes)."""
    gate = asyncio.Semaphore(concurrency)

    async def start(member: Member) -> None:
        async with gate:
            await client.start_workflow(
                SubscriptionWorkflow.run,
                member.workflow_input,
                id=subscription_workflow_id(member.workflow_input.setup.subscription_id),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=starting_search_attributes(member.workflow_input),
            )

    await asyncio.gather(*(start(m) for m in members))
