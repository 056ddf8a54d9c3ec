"""Enrollment: idempotent, and refused with a clear reason (nothing written) when it cannot be made."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pendulum
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import session_scope
from models.subscriptions import Subscription
from operations.enrollment import EnrollRequest, enroll
from operations.refusals import Refusal
from stack.search_attributes import NEXT_DUE_AT, SUBSCRIPTION_STATUS
from tests.subscriptions.helpers import TASK_QUEUE, approved_sales_per_reference, invoices, local_today, start_held
from tests.support.cards import save_card
from tests.support.clinic import add_card, make_clinic


def _subscriptions(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Subscription)).one())


async def test_enrolling_twice_starts_one_workflow_and_bills_one_first_cycle(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=1, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, local_today("America/Chicago") - timedelta(days=1))
    first = await enroll(temporal_env.client, db, request, task_queue=TASK_QUEUE)
    second = await enroll(temporal_env.client, db, request, task_queue=TASK_QUEUE)
    assert (second.subscription_id, second.workflow_id) == (first.subscription_id, first.workflow_id)
    assert first.created and not second.created
    handle = temporal_env.client.get_workflow_handle(first.workflow_id)
    assert await handle.result() == "ended"
    runs = [w async for w in temporal_env.client.list_workflows(f"WorkflowId = '{first.workflow_id}'")]
    assert len({run.id for run in runs}) == 1
    (invoice,) = invoices(db, first.subscription_id)
    assert approved_sales_per_reference(sandbox) == {invoice.id: 1}
    assert _subscriptions(db) == 1


async def test_same_id_with_other_terms_is_refused(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db)
    await save_card(db, sandbox_server, clinic)
    with temporal_env.with_time_skipping_disabled():

        def fixed(start_date: date) -> EnrollRequest:
            return EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, start_date, subscription_id="sub_fixed")

        await enroll(temporal_env.client, db, fixed(date(2027, 6, 1)), task_queue=TASK_QUEUE)
        with pytest.raises(Refusal, match="already exists with other terms"):
            await enroll(temporal_env.client, db, fixed(date(2027, 7, 1)), task_queue=TASK_QUEUE)
    from operations.subscriptions import cancel

    await cancel(temporal_env.client, "sub_fixed", mode="now")


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("unknown_plan", "plan_id", "unknown or inactive plan"),
        ("unknown_client", "client_id", "unknown client"),
        ("unknown_location", "location_id", "unknown location"),
        ("unknown_card", "card_id", "unknown card"),
        ("expired_card", "card_id", "expired"),
        ("foreign_card", "card_id", "belongs to another client"),
        ("recurring_disallowed", "location_id", "does not allow Gravity payment for recurring payments"),
        ("no_default_card", "card_id", "no default saved card"),
    ],
)
async def test_refused_enrollment_names_the_problem_and_writes_nothing(
    db: Engine, temporal_env: WorkflowEnvironment, case: str, field: str, message: str
) -> None:
    clinic = make_clinic(db)
    other = make_clinic(db)
    card = add_card(db, clinic, gravity_ref="ref-ok", default=case != "no_default_card")
    expired = add_card(db, clinic, gravity_ref="ref-old", default=False, exp_month=1, exp_year=2020)
    foreign = add_card(db, other, gravity_ref="ref-foreign")
    if case == "recurring_disallowed":
        with session_scope(db) as session:
            from models.clinic import Location

            location = session.get(Location, clinic.location_id)
            assert location is not None
            location.allow_recurring_gravity = False
    values: dict[str, Any] = {
        "client_id": clinic.client_id,
        "pet_id": clinic.pet_id,
        "plan_id": clinic.plan_id,
        "location_id": clinic.location_id,
        "start_date": date(2027, 6, 1),
        "card_id": card if case != "no_default_card" else None,
    }
    values.update(
        {
            "unknown_plan": {"plan_id": "plan_missing"},
            "unknown_client": {"client_id": "cli_missing"},
            "unknown_location": {"location_id": "loc_missing"},
            "unknown_card": {"card_id": "card_missing"},
            "expired_card": {"card_id": expired},
            "foreign_card": {"card_id": foreign},
        }.get(case, {})
    )
    with pytest.raises(Refusal, match=message) as refused:
        await enroll(temporal_env.client, db, EnrollRequest(**values), task_queue=TASK_QUEUE)
    assert refused.value.field == field
    assert _subscriptions(db) == 0


async def test_a_new_subscription_is_listed_by_its_first_due_date_without_an_upsert(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """The starter sets NextDueAt (from the same calendar function the workflow uses), so finance sees
    it at once and the first run's history carries no search-attribute upsert."""
    clinic = make_clinic(db, timezone="America/Denver")
    await save_card(db, sandbox_server, clinic)
    start_date = local_today("America/Denver") + timedelta(days=10)
    handle = await start_held(temporal_env, db, clinic, start_date)

    history = await _until_timer_started(handle)
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in kinds
    attributes = (await handle.describe()).typed_search_attributes
    expected = pendulum.datetime(start_date.year, start_date.month, start_date.day, 9, tz="America/Denver").in_timezone("UTC")
    assert attributes.get(NEXT_DUE_AT) == expected
    assert attributes.get(SUBSCRIPTION_STATUS) == "active"
    await handle.terminate("test done")


async def _until_timer_started(handle: WorkflowHandle) -> WorkflowHistory:
    """The history once the first workflow task has put the run to sleep until the first due date."""
    for _ in range(100):
        history = await handle.fetch_history()
        if any(event.event_type == EventType.EVENT_TYPE_TIMER_STARTED for event in history.events):
            return history
        await asyncio.sleep(0.1)
    raise AssertionError("the first workflow task never slept until the first due date")
