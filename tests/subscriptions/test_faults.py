"""Gateway faults and a dying worker never lose or double a charge."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations.enrollment import EnrollRequest, enroll
from tests.subscriptions.helpers import (
    assert_one_cycle_charged_once,
    payments,
    start,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

ONE_CYCLE: dict[str, Any] = {"term_months": 1, "auto_renew": False}


async def test_lost_response_on_a_charge_is_resolved_by_lookup_not_a_second_charge(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, **ONE_CYCLE)
    await save_card(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "lost", count=1)
    handle = await start(temporal_env, db, clinic, date(2027, 4, 1))
    assert await handle.result() == "ended"

    sub_id = subscription_id_of(handle)
    assert_one_cycle_charged_once(db, sandbox, sub_id)


async def test_gateway_outage_delays_the_charge_and_never_fails_or_doubles_it(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, **ONE_CYCLE)
    await save_card(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "500", count=3)
    sandbox.inject_fault("lookup", "429", count=2)
    handle = await start(temporal_env, db, clinic, date(2027, 4, 1))
    assert await handle.result() == "ended"

    sub_id = subscription_id_of(handle)
    assert_one_cycle_charged_once(db, sandbox, sub_id)


async def test_worker_killed_in_the_middle_of_a_charge_completes_the_cycle_exactly_once(
    db: Engine, database_url: str, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, **ONE_CYCLE)
    await save_card(db, sandbox_server, clinic)
    queue = "kill-test"
    address = temporal_env.client.service_client.config.target_host
    # The sale commits at Gravity but its answer is lost, and the worker's first lookup hangs:
    # the worker is killed while it waits, knowing nothing of the charge it made.
    sandbox.inject_fault("tokenizedPayment", "lost", count=1)
    sandbox.inject_fault("lookup", "slow", count=1, delay_s=30.0)

    enrollment = await enroll(
        temporal_env.client, db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2027, 4, 1)), task_queue=queue
    )
    handle = temporal_env.client.get_workflow_handle(enrollment.workflow_id)
    first = _spawn_worker(database_url, address, queue, sandbox_server.base_url)
    try:
        await _until(lambda: any(t["transaction_type"] == "CreditSale" for t in sandbox.transactions()), seconds=60)
        os.kill(first.pid, signal.SIGKILL)  # the sale is committed at Gravity; its answer never arrives
        first.wait(timeout=10)
        assert payments(db, enrollment.subscription_id)[0].status == "pending"
        second = _spawn_worker(database_url, address, queue, sandbox_server.base_url)
        try:
            assert await asyncio.wait_for(handle.result(), timeout=120) == "ended"
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()

    assert_one_cycle_charged_once(db, sandbox, enrollment.subscription_id)


def _spawn_worker(database_url: str, address: str, queue: str, gravity_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_process", database_url, address, queue, gravity_url],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


async def _until(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {seconds} s")
