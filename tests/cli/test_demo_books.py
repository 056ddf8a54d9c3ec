"""After `billing demo`: `billing --demo ...` reaches the demo's books through its record in the data
folder, and the workflows a run left open are terminated rather than left live in the store."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from cli.operator_stack import use_demo_books
from demo.leftovers import REASON, running_on, terminate_running
from demo.record import DemoRecord, write_record
from demo.visit import visit_queue_of
from operations.payments import CounterLine, create_counter_invoice_for
from tests.cli.conftest import Run, invoke, refused
from tests.support.clinic import make_clinic


async def billing_in(environment: dict[str, str], *args: str) -> Run:
    try:
        return await asyncio.to_thread(invoke, environment, *args)
    finally:
        use_demo_books(False)


async def test_demo_flag_reads_the_recorded_demo_database(db: Engine, database_url: str, cli_environment: dict[str, str], tmp_path: Path) -> None:
    clinic = make_clinic(db)
    create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Exam", 6_500)])
    # The configured database is not the demo's: only the record leads to the books.
    elsewhere = make_url(database_url).set(database="no_such_books").render_as_string(hide_password=False)
    environment = {**cli_environment, "DATABASE_URL": elsewhere, "BILLING_DATA_DIR": str(tmp_path)}
    today = date.today()
    period = ("--from", (today - timedelta(days=1)).isoformat(), "--to", (today + timedelta(days=1)).isoformat())

    refused(await billing_in(environment, "--demo", "report", *period), "no demo has run here yet")
    refused(await billing_in(environment, "report", *period), "cannot reach the database")

    demo_database = make_url(database_url).database
    assert demo_database
    write_record(tmp_path, DemoRecord(database=demo_database, task_queue="billing-demo-test", namespace="default"))
    report = (await billing_in(environment, "--demo", "report", *period, "--json")).json()
    assert [loc["location_id"] for loc in report["locations"]] == [clinic.location_id]
    refused(await billing_in(environment, "report", *period), "cannot reach the database")


async def test_leftover_workflows_are_terminated_with_the_reason(temporal_env: WorkflowEnvironment) -> None:
    client = temporal_env.client
    queue = f"billing-demo-{uuid.uuid4().hex[:6]}"  # no worker polls it: the runs stay open
    handles = [await client.start_workflow("NeverServed", id=f"left-{queue}-{n}", task_queue=queue) for n in range(3)]
    # The run's visit day (its front desk) has a queue of its own, and is the run's too.
    handles.append(await client.start_workflow("NeverServed", id=f"visit-{queue}", task_queue=visit_queue_of(queue)))
    other = await client.start_workflow("NeverServed", id=f"other-{queue}", task_queue=f"{queue}-other")

    async def statuses() -> list[WorkflowExecutionStatus | None]:
        return [(await handle.describe()).status for handle in handles]

    try:
        for _ in range(50):  # visibility lists a new run a moment after it starts
            if len([w async for w in client.list_workflows(running_on(queue))]) == len(handles):
                break
            await asyncio.sleep(0.1)
        assert await terminate_running(client, queue) == 4
        assert await statuses() == [WorkflowExecutionStatus.TERMINATED] * 4
        history = await handles[0].fetch_history()
        terminated = history.events[-1].workflow_execution_terminated_event_attributes
        assert terminated.reason == REASON
        assert (await other.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        # Never leave a run without a worker on the suite's shared time-skipping server: its pending
        # task would stop simulated time for every later test.
        for handle in [*handles, other]:
            with contextlib.suppress(RPCError):
                await handle.terminate(reason="test over")
