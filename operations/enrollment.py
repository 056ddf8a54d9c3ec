"""Enrolling a pet in a health plan: validate everything, write the subscription row, start its
workflow. A refused enrollment writes nothing; enrolling the same subscription twice starts one
workflow and bills one first cycle (the workflow id is derived from the subscription id and an
existing run is reused)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from books.cards import recurring_not_allowed
from foundation.contracts import SubscriptionInput, SubscriptionSetup, SubscriptionState
from foundation.enrollment_window import MAX_DAYS_AHEAD, MAX_DAYS_BACK
from foundation.ids import enrollment_key, subscription_id_for, subscription_workflow_id
from foundation.scopes import Actor
from foundation.statuses import SubscriptionStatus
from models.clinic import Client as ClinicClient, Location, Pet, SavedCard
from models.db import session_scope
from models.plans import HealthPlan, terms_of
from models.subscriptions import Subscription
from operations.audit import Subject, record
from operations.cards import card_to_charge
from operations.plan_rules import plan_offered
from operations.refusals import Refusal, conflict
from stack.search_attributes import CLIENT_ID, LOCATION_ID, PLAN_ID
from workflows.subscription import SubscriptionWorkflow, live_search_attributes


def check_start_date(start_date: date, today: date) -> None:
    """An enrollment starts at most `MAX_DAYS_BACK` days back and `MAX_DAYS_AHEAD` ahead of today."""
    if (today - start_date).days > MAX_DAYS_BACK:
        raise Refusal("start_date", f"must be at most {MAX_DAYS_BACK} days in the past")
    if (start_date - today).days > MAX_DAYS_AHEAD:
        raise Refusal("start_date", f"must be at most {MAX_DAYS_AHEAD} days in the future")


@dataclass(frozen=True)
class EnrollRequest:
    client_id: str
    pet_id: str
    plan_id: str
    location_id: str
    start_date: date
    card_id: str | None = None
    subscription_id: str | None = None

    def resolved_id(self) -> str:
        """The caller's id, or one derived from what is enrolled (so a retry is the same enrollment)."""
        if self.subscription_id:
            return self.subscription_id
        return subscription_id_for(enrollment_key(self.client_id, self.pet_id, self.plan_id, self.start_date))


@dataclass(frozen=True)
class Enrollment:
    subscription_id: str
    workflow_id: str
    created: bool


def record_enrollment(engine: Engine, request: EnrollRequest, *, actor: Actor | None = None) -> tuple[SubscriptionInput, bool]:
    """Validate and write the subscription row in one transaction (with its audit entry, naming
    `actor`); (workflow input, created)."""
    with session_scope(engine) as session:
        location, plan, card = _validate(session, request)
        subscription_id = request.resolved_id()
        existing = session.get(Subscription, subscription_id)
        if existing is not None:
            _same_enrollment(existing, request, card)
            created = False
        else:
            session.add(
                Subscription(
                    id=subscription_id,
                    client_id=request.client_id,
                    pet_id=request.pet_id,
                    plan_id=plan.id,
                    location_id=location.id,
                    card_id=card.id if card else None,
                    start_date=request.start_date,
                    anchor_day=request.start_date.day,
                    status=SubscriptionStatus.PENDING,
                    plan_version=plan.version,
                )
            )
            created = True
            subject = Subject("subscription", subscription_id, location.id)
            record(session, actor, "subscription.enroll", subject, workflow_id=subscription_workflow_id(subscription_id))
        setup = SubscriptionSetup(
            subscription_id=subscription_id,
            client_id=request.client_id,
            location_id=location.id,
            pet_id=request.pet_id,
            timezone=location.timezone,
            start_date=request.start_date,
            charge_at_minutes=location.charge_time.hour * 60 + location.charge_time.minute,
        )
        state = SubscriptionState(status=SubscriptionStatus.ACTIVE, plan=terms_of(plan), card_id=card.id if card else None)
        return SubscriptionInput(setup, state), created


async def enroll(client: Client, engine: Engine, request: EnrollRequest, *, task_queue: str, actor: Actor | None = None) -> Enrollment:
    """Record the enrollment and start (or find) its workflow.

    The row is written in a thread, so the caller's event loop (the API's, a worker's sharing the
    process) keeps serving while the database answers."""
    workflow_input, created = await asyncio.to_thread(record_enrollment, engine, request, actor=actor)
    setup = workflow_input.setup
    handle: WorkflowHandle = await client.start_workflow(
        SubscriptionWorkflow.run,
        workflow_input,
        id=subscription_workflow_id(setup.subscription_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=starting_search_attributes(workflow_input),
    )
    return Enrollment(setup.subscription_id, handle.id, created)


def starting_search_attributes(workflow_input: SubscriptionInput) -> TypedSearchAttributes:
    """What finance can list a new subscription by, set at start: client, location and plan, and the
    ones the workflow keeps current (status, first due date), so its first run upserts nothing."""
    setup, plan = workflow_input.setup, workflow_input.state.plan
    fixed: list[SearchAttributePair[Any]] = [
        SearchAttributePair(CLIENT_ID, setup.client_id),
        SearchAttributePair(LOCATION_ID, setup.location_id),
        SearchAttributePair(PLAN_ID, plan.plan_id if plan else ""),
    ]
    return TypedSearchAttributes([*fixed, *live_search_attributes(setup, workflow_input.state)])


def _validate(session: Session, request: EnrollRequest) -> tuple[Location, HealthPlan, SavedCard | None]:
    location = session.get(Location, request.location_id)
    if location is None:
        raise Refusal("location_id", f"unknown location {request.location_id}")
    client = session.get(ClinicClient, request.client_id)
    if client is None:
        raise Refusal("client_id", f"unknown client {request.client_id}")
    if client.location_id != location.id:
        raise Refusal("client_id", f"client {client.id} is not a client of location {location.id}")
    pet = session.get(Pet, request.pet_id)
    if pet is None or pet.client_id != client.id:
        raise Refusal("pet_id", f"unknown pet {request.pet_id} for client {client.id}")
    plan = plan_offered(session, request.plan_id, location.id)
    if not location.allow_recurring_gravity:
        raise Refusal("location_id", recurring_not_allowed(location.id))
    today = pendulum.now(location.timezone).date()
    card = card_to_charge(session, request.card_id, client.id, max(today, request.start_date))
    return location, plan, card


def _same_enrollment(existing: Subscription, request: EnrollRequest, card: SavedCard | None) -> None:
    same = (
        existing.client_id == request.client_id
        and existing.pet_id == request.pet_id
        and existing.plan_id == request.plan_id
        and existing.location_id == request.location_id
        and existing.start_date == request.start_date
    )
    if not same:
        raise conflict("subscription_id", f"subscription {existing.id} already exists with other terms")
