"""A cycle whose first charge Gravity refuses (an incident) is tracked by its real invoice: pay-now
pays it and it leaves the list, cancel-now voids it, and nothing is charged again and again."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.contracts import SubscriptionView
from foundation.settings import SANDBOX_TOKEN
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations import subscriptions as commands
from operations.enrollment import EnrollRequest, enroll
from stack.search_attributes import SUBSCRIPTION_STATUS
from tests.subscriptions.helpers import (
    approved_sales_per_reference,
    assert_books_match_gateway,
    events,
    invoices,
    local_today,
    payments,
    start,
    subscription_id_of,
    until_view,
    worker_with_token,
)
from tests.support.cards import save_card
from tests.support.clinic import Clinic, make_clinic

TZ = "America/Chicago"
WRONG_TOKEN = "not-the-merchant-token"


async def enroll_due_yesterday(env: WorkflowEnvironment, db: Engine, clinic: Clinic, queue: str) -> tuple[WorkflowHandle, str]:
    """Enroll with the clock held, the first cycle due yesterday: it is charged at once."""
    with env.with_time_skipping_disabled():
        enrollment = await enroll(
            env.client,
            db,
            EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, local_today(TZ) - timedelta(days=1)),
            task_queue=queue,
        )
    return env.client.get_workflow_handle(enrollment.workflow_id), enrollment.subscription_id


async def incident(env: WorkflowEnvironment, subscription_id: str) -> SubscriptionView:
    """The view once the refused first charge has become an incident, waiting for a person."""
    view = await until_view(env, subscription_id, lambda v: v.status == "past_due", seconds=30)
    assert [i.waiting_for for i in view.open_invoices] == ["payment"]
    return view


async def test_pay_now_after_a_refused_first_charge_pays_the_invoice_once_and_recovers(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db, timezone=TZ, term_months=2)
    await save_card(db, sandbox_server, clinic)
    queue = "refused-then-paid-now"
    async with worker_with_token(temporal_env, db, sandbox_server, queue, WRONG_TOKEN):
        handle, sub_id = await enroll_due_yesterday(temporal_env, db, clinic, queue)
        await incident(temporal_env, sub_id)
    async with worker_with_token(temporal_env, db, sandbox_server, queue, SANDBOX_TOKEN):  # the credentials are mended
        await commands.pay_now(temporal_env.client, sub_id)
        view = await until_view(temporal_env, sub_id, lambda v: v.status == "active", seconds=30)
        assert (view.status, view.open_invoices) == ("active", [])
        assert (await handle.describe()).typed_search_attributes.get(SUBSCRIPTION_STATUS) == "active"
        attempts = len(payments(db, sub_id))
        await asyncio.sleep(1)
        assert len(payments(db, sub_id)) == attempts == 2  # the refused try and the paying one; nothing since

        (invoice,) = invoices(db, sub_id)
        assert invoice.status == "paid"
        assert approved_sales_per_reference(sandbox) == {invoice.id: 1}
        kinds = events(db, sub_id)
        assert kinds.index("payment.incident") < kinds.index("subscription.recovered")
        await commands.cancel(temporal_env.client, sub_id, mode="now")
        assert await handle.result() == "cancelled"
    assert_books_match_gateway(db, sandbox)


async def test_cancel_now_after_a_refused_first_charge_voids_its_invoice(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db, timezone=TZ, term_months=2)
    await save_card(db, sandbox_server, clinic)
    queue = "refused-then-cancelled"
    async with worker_with_token(temporal_env, db, sandbox_server, queue, WRONG_TOKEN):
        handle, sub_id = await enroll_due_yesterday(temporal_env, db, clinic, queue)
        view = await incident(temporal_env, sub_id)
        await commands.cancel(temporal_env.client, sub_id, mode="now", reason="card refused")
        assert await handle.result() == "cancelled"
    (invoice,) = invoices(db, sub_id)
    assert invoice.status == "void"
    assert [i.invoice_id for i in view.open_invoices] == [invoice.id]
    assert approved_sales_per_reference(sandbox) == {}
    assert_books_match_gateway(db, sandbox)


async def test_a_charge_that_can_never_be_sent_is_an_incident_not_an_endless_retry(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    # The location names a merchant the worker holds no Gravity token for (a LookupError, every try).
    clinic = make_clinic(db, term_months=1, oid="oid-without-a-token")
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 4, 1))
    assert await asyncio.wait_for(handle.result(), timeout=30) == "ended"

    sub_id = subscription_id_of(handle)
    assert "payment.incident" in events(db, sub_id)
    assert [i.status for i in invoices(db, sub_id)] == ["open"]
    assert approved_sales_per_reference(sandbox) == {}
