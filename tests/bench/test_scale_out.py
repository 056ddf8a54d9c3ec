"""Scale-out on one machine: several worker processes share one task queue, one Temporal server and
one database; one of them is SIGKILLed mid-run; every cycle is still billed exactly once and every
surviving worker did part of the work."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.database import drop_database, fresh_database
from bench.histories import activity_identities, histories, matching_runs
from bench.measure import billed_query, due_start_date
from bench.population import enroll_members, seed_clinic, start_workflows
from bench.workers import WorkerPool, WorkerSpec
from foundation.converter import data_converter
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from models.db import get_engine
from operations.reconciliation import reconcile

SUBSCRIPTIONS = 150
WORKERS = 3


async def test_workers_share_the_load_and_a_killed_one_loses_nothing(database_url: str, temporal_env: WorkflowEnvironment) -> None:
    name = f"billing_scale_{uuid.uuid4().hex[:8]}"
    url = fresh_database(database_url, name)
    address = temporal_env.client.service_client.config.target_host
    # A plain client: these workflows run on the real clock (no time skipping), the first cycle is due now.
    client = await Client.connect(address, data_converter=data_converter)
    engine = get_engine(url)
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    try:
        with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}) as sandbox, SandboxControl(sandbox.root_url) as control:
            location_id, plan_id = seed_clinic(engine, "scale", term_months=12)
            members = await enroll_members(
                engine,
                sandbox.base_url,
                "scale",
                location_id=location_id,
                plan_id=plan_id,
                start_dates=[due_start_date(1)] * SUBSCRIPTIONS,
            )
            pool = WorkerPool(WorkerSpec(url, address, queue, sandbox.base_url))
            pool.start(WORKERS)
            try:
                await start_workflows(client, members, task_queue=queue)
                await _until(lambda: _paid(engine) >= SUBSCRIPTIONS // 4, seconds=120)
                victim = pool.workers[0]
                pool.kill(victim)  # mid-run: some of its charges and workflow tasks are in flight
                done = billed_query(queue)
                await _until_async(lambda: _count(client, done), SUBSCRIPTIONS, seconds=150)
                stats = pool.stats()
            finally:
                pool.stop()
            gateway = control.transactions()

        # Every cycle billed exactly once: one paid invoice and one approved payment per subscription,
        # one approved sale per invoice at the gateway, books equal to the gateway's to the cent.
        with Session(engine) as session:
            invoices = list(session.exec(select(Invoice).where(Invoice.kind == "subscription")))
            approved = session.exec(select(func.count()).select_from(Payment).where(Payment.status == "approved")).one()
        assert len(invoices) == SUBSCRIPTIONS
        assert all(i.status == "paid" for i in invoices)
        assert approved == SUBSCRIPTIONS
        sales: dict[str, int] = {}
        for row in gateway:
            if row["transaction_type"] == "CreditSale" and row["status"] == "approved" and not row["voided"]:
                sales[row["reference"]] = sales.get(row["reference"], 0) + 1
        assert sales == {i.id: 1 for i in invoices}
        rows: list[Mapping[str, Any]] = [*gateway]
        report = reconcile(engine, rows)
        assert report.double_charges == 0 and report.mismatches == [] and report.ledger_balanced

        # The load was shared: each surviving worker ran charges (its own counters) ...
        survivors = [w for w in pool.workers if not w.killed]
        assert len(survivors) == WORKERS - 1
        for worker in survivors:
            assert stats[worker.name]["activities"].get("charge_cycle", 0) > 0, stats
        # ... and the server's histories agree: activities were started by more than one worker.
        runs = await matching_runs(client, done, limit=60)
        identities = {identity for history in await histories(client, runs) for identity in activity_identities(history)}
        assert len({identity.split("@")[0] for identity in identities}) >= 2, identities
    finally:
        engine.dispose()
        drop_database(database_url, name)


def _paid(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Invoice).where(Invoice.status == "paid")).one()


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def _until(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {seconds} s"
        await asyncio.sleep(0.1)


async def _until_async(count: Callable[[], Awaitable[int]], target: int, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (await count()) < target:
        assert time.monotonic() < deadline, f"not reached within {seconds} s"
        await asyncio.sleep(0.2)
