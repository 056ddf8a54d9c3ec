"""A year of monthly billing through the real workflow, database and sandbox, in simulated time."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.subscriptions.helpers import approved_sales_per_reference, assert_books_match_gateway, invoices, start
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


async def test_happy_year_bills_twelve_cycles_on_the_anchor_day(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, price_cents=4_500, enrollment_fee_cents=2_500, auto_renew=False, timezone="America/New_York")
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 1, 31))

    await temporal_env.fast_forward(handle)
    assert await handle.result() == "ended"

    billed = invoices(db, handle.id.split(":", 1)[1])
    assert [i.period_start for i in billed] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
        date(2027, 7, 31),
        date(2027, 8, 31),
        date(2027, 9, 30),
        date(2027, 10, 31),
        date(2027, 11, 30),
        date(2027, 12, 31),
    ]
    assert [i.total_cents for i in billed] == [7_000] + [4_500] * 11
    assert [i.status for i in billed] == ["paid"] * 12
    assert approved_sales_per_reference(sandbox) == {i.id: 1 for i in billed}
    assert_books_match_gateway(db, sandbox)


async def test_a_run_spans_about_a_year_monthly_twelve_cycles_yearly_one(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """Continue-as-new once a run has billed a year: a yearly plan's three cycles take three runs
    (and the run that ends the term), so no run started on old code outlives a year."""
    clinic = make_clinic(db, price_cents=48_000, interval_months=12, term_months=36, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 15))
    assert await handle.result() == "ended"

    runs = [execution async for execution in temporal_env.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 4
    billed = invoices(db, handle.id.split(":", 1)[1])
    assert [i.period_start for i in billed] == [date(2027, 3, 15), date(2028, 3, 15), date(2029, 3, 15)]
    assert approved_sales_per_reference(sandbox) == {i.id: 1 for i in billed}
    assert_books_match_gateway(db, sandbox)
