"""What every subscription scenario checks at the end, and small shortcuts to enroll and inspect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.contracts import SubscriptionView
from foundation.settings import SANDBOX_OID
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from operations import subscriptions as commands
from operations.enrollment import EnrollRequest, enroll
from operations.reconciliation import reconcile
from tests.support.clinic import Clinic
from worker import build_worker

TASK_QUEUE = "billing-tests"


async def start(env: WorkflowEnvironment, engine: Engine, clinic: Clinic, start_date: date, card_id: str | None = None) -> WorkflowHandle:
    """Enroll; the workflow's clock then skips to the end by itself whenever it is idle."""
    enrollment = await enroll(
        env.client,
        engine,
        EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, start_date, card_id=card_id),
        task_queue=TASK_QUEUE,
    )
    return env.client.get_workflow_handle(enrollment.workflow_id)


def invoices(engine: Engine, subscription_id: str) -> list[Invoice]:
    """The subscription's cycle invoices, oldest first (settlement and proration invoices left out)."""
    with Session(engine) as session:
        query = select(Invoice).where(Invoice.subscription_id == subscription_id, Invoice.kind == "subscription")
        return list(session.exec(query.order_by(col(Invoice.period_start))))


def payments(engine: Engine, subscription_id: str) -> list[Payment]:
    with Session(engine) as session:
        return list(session.exec(select(Payment).where(Payment.subscription_id == subscription_id).order_by(col(Payment.created_at))))


def assert_books_match_gateway(engine: Engine, sandbox: SandboxControl) -> None:
    """After every scenario: ledger balanced, no double charge, our payments = the gateway's."""
    rows: list[Mapping[str, Any]] = [*sandbox.transactions()]
    report = reconcile(engine, rows)
    assert report.ledger_balanced
    assert report.double_charges == 0
    assert report.mismatches == []


def assert_one_cycle_charged_once(engine: Engine, sandbox: SandboxControl, subscription_id: str) -> None:
    """A one-cycle subscription after faults: its invoice paid by the first attempt, one approved
    sale at the gateway, the books equal to the gateway's."""
    (invoice,) = invoices(engine, subscription_id)
    assert invoice.status == "paid"
    assert [(p.attempt, p.status) for p in payments(engine, subscription_id)] == [(1, "approved")]
    assert approved_sales_per_reference(sandbox) == {invoice.id: 1}
    assert_books_match_gateway(engine, sandbox)


def approved_sales_per_reference(sandbox: SandboxControl) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in sandbox.transactions():
        if row["transaction_type"] == "CreditSale" and row["status"] == "approved" and not row["voided"]:
            counts[row["reference"]] = counts.get(row["reference"], 0) + 1
    return counts


async def start_held(env: WorkflowEnvironment, engine: Engine, clinic: Clinic, start_date: date, card_id: str | None = None) -> WorkflowHandle:
    """Enroll with the workflow's clock held: it moves only by `env.fast_forward(handle, duration)`,
    so a test can act in the middle of a period."""
    with env.with_time_skipping_disabled():
        return await start(env, engine, clinic, start_date, card_id)


def local_today(tz: str) -> date:
    import pendulum

    return pendulum.now(tz).date()


def events(engine: Engine, subscription_id: str) -> list[str]:
    from models.outbox import OutboxEvent

    with Session(engine) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.stream == f"subscription:{subscription_id}").order_by(col(OutboxEvent.seq)))
        return [row.type for row in rows]


def subscription_id_of(handle: WorkflowHandle) -> str:
    return handle.id.split(":", 1)[1]


@asynccontextmanager
async def worker_with_token(env: WorkflowEnvironment, db: Engine, server: SandboxServer, queue: str, token: str) -> AsyncIterator[Worker]:
    """A worker on its own queue whose Gravity token is `token` (a wrong one makes Gravity answer 401)."""
    gateways = GatewayDirectory(server.base_url, {SANDBOX_OID: token}, timeout=5.0)
    try:
        async with build_worker(env.client, db, gateways, task_queue=queue) as worker:
            yield worker
    finally:
        await gateways.aclose()


async def until_view(env: WorkflowEnvironment, subscription_id: str, condition: Callable[[SubscriptionView], bool], *, seconds: float) -> SubscriptionView:
    """The subscription's view once `condition` holds, or the last one after `seconds` (the caller asserts)."""
    deadline = time.monotonic() + seconds
    while True:
        view = await commands.describe(env.client, subscription_id)
        if condition(view) or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.2)
