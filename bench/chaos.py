"""The chaos run: months of billing for many subscriptions while everything that can fail, fails.

S subscriptions at one clinic bill M simulated months (the dev server's time skipping) on W worker
processes. Before the first charge a lost answer, a 5xx and a 429 are armed at the gateway, so even
a short run meets them. Meanwhile a driver, following a script drawn from the seed, at random moments:

- SIGKILLs a worker (mid-charge or not) and starts a replacement a moment later;
- makes the sandbox answer charges or lookups with 500, 429, a slow answer (past the client's
  timeout) or a **lost response after commit** (the sale is made, the answer never arrives);
- cuts every PostgreSQL connection of the billing database (`pg_terminate_backend`);
- scripts card declines: soft ones (retried on the dunning schedule, sometimes until it runs out and
  the subscription is suspended) and hard ones (wait for a new card).

When every workflow has ended, `bench.invariants.check` judges the result from the gateway's list
and the database. The script of actions is reproducible from the seed; how it interleaves with the
billing depends on the machine's timing, which is the point.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import time as wall
from typing import Any

import psycopg
import pendulum
from temporalio.client import Client
from temporalio.testing import TimeSkipper

from bench.database import admin_url, fresh_database
from bench.invariants import Subscriber, Terms, check
from bench.population import PRICE_CENTS, TIMEZONE, Member, enroll_members, local_today, seed_clinic, start_workflows
from bench.workers import WorkerPool, WorkerSpec
from foundation.converter import data_converter
from foundation.ids import subscription_workflow_id
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import get_engine
from workflows.dunning import DEFAULT_SCHEDULE

CHAOS_DATABASE = "billing_chaos"
SOFT_REASONS = ("insufficient_funds", "do_not_honor", "generic")
HARD_REASONS = ("expired_card", "lost_or_stolen")
OPENING_GATEWAY_FAULTS = ("lost", "500", "429")


@dataclass(frozen=True)
class ChaosOptions:
    subscriptions: int = 6
    months: int = 2
    workers: int = 2
    seed: int = 1
    calm_s: tuple[float, float] = (0.4, 1.6)  # pause between two chaos actions
    timeout_s: float = 1800.0
    database: str = CHAOS_DATABASE


class Chaos:
    """The driver: draws actions from the seed and applies them until told to stop."""

    def __init__(self, options: ChaosOptions, pool: WorkerPool, control: SandboxControl, database_url: str, members: list[Member]) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.pool = pool
        self.control = control
        self.database_url = database_url
        self.members = members
        self.faults: Counter[str] = Counter()
        self._restarts: list[asyncio.Task[None]] = []

    def initial_declines(self) -> None:
        """Some cards start troubled: a soft decline or two, an exhausted schedule, a hard decline."""
        for member in self.members:
            draw = self.rng.random()
            if draw < 0.2:
                self._decline(member, self.rng.choice(SOFT_REASONS), self.rng.choice((1, 2)))
            elif draw < 0.25:
                self._decline(member, self.rng.choice(SOFT_REASONS), 1 + len(DEFAULT_SCHEDULE.retry_offsets_days))
            elif draw < 0.3:
                self._decline(member, self.rng.choice(HARD_REASONS), 1)

    def opening_faults(self) -> None:
        """Arm a lost answer, a 5xx and a 429 at the gateway before the first charge, so that every
        run meets them however short it is: simulated time is fast, and a small run can end before
        the random draws reach the gateway."""
        for kind in OPENING_GATEWAY_FAULTS:
            self.control.inject_fault("tokenizedPayment", kind, count=1)
            self.faults[f"tokenizedPayment:{kind}"] += 1

    def _decline(self, member: Member, reason: str, count: int) -> None:
        self.control.decline_next(member.card_ref, reason, count=count)
        self.faults[f"decline:{'hard' if reason in HARD_REASONS else 'soft'}"] += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Act after each calm until `stop`. The first action is always a worker kill: simulated time
        runs fast, and even a short run must lose a worker while it bills."""
        first = True
        while not stop.is_set():
            low, high = self.options.calm_s
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(low, high))
                break
            except asyncio.TimeoutError:
                pass
            await (self._kill_worker() if first else self._act(self.rng.random()))
            first = False
        await asyncio.gather(*self._restarts, return_exceptions=True)

    async def _act(self, draw: float) -> None:
        if draw < 0.15:
            await self._kill_worker()
        elif draw < 0.60:
            await asyncio.to_thread(self._gateway_fault)
        elif draw < 0.75:
            await asyncio.to_thread(self._cut_database)
        else:
            member = self.rng.choice(self.members)
            hard = self.rng.random() < 0.15
            reason = self.rng.choice(HARD_REASONS if hard else SOFT_REASONS)
            await asyncio.to_thread(self._decline, member, reason, 1 if hard else self.rng.choice((1, 1, 2)))

    async def _kill_worker(self) -> None:
        live = self.pool.live
        if not live:
            return
        victim = self.rng.choice(live)
        delay = self.rng.uniform(0.0, 2.0)
        await asyncio.to_thread(self.pool.kill, victim)
        self.faults["worker_kill"] += 1

        async def replace() -> None:
            await asyncio.sleep(delay)
            await asyncio.to_thread(self.pool.start, 1)

        self._restarts.append(asyncio.create_task(replace()))

    def _gateway_fault(self) -> None:
        endpoint = self.rng.choice(("tokenizedPayment", "tokenizedPayment", "lookup"))
        kinds = ("500", "429", "slow", "lost") if endpoint == "tokenizedPayment" else ("500", "429", "slow")
        kind = self.rng.choice(kinds)
        count = self.rng.choice((1, 1, 2))
        delay = round(self.rng.uniform(2.0, 7.0), 1) if kind == "slow" else None
        self.control.inject_fault(endpoint, kind, count=count, delay_s=delay)
        self.faults[f"{endpoint}:{kind}"] += count

    def _cut_database(self) -> None:
        """Terminate every server process of the billing database (the workers' pooled connections)."""
        name = self.options.database
        with psycopg.connect(admin_url(self.database_url), autocommit=True) as conn:
            cut = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchone()
        self.faults["db_cut"] += 1
        self.faults["db_connections_cut"] += int(cut[0]) if cut else 0


def start_dates(rng: random.Random, count: int) -> list[Any]:
    """Anchors spread over the coming four weeks (month ends included), from local today."""
    today = local_today()
    base = pendulum.date(today.year, today.month, today.day)
    return [base.add(days=rng.randrange(0, 28)) for _ in range(count)]


async def chaos_on(server_url: str, temporal_address: str, namespace: str, options: ChaosOptions, *, say: Any = print) -> dict[str, Any]:
    """Run the chaos on an already running PostgreSQL server and a time-skipping Temporal dev server."""
    began = time.monotonic()
    url = fresh_database(server_url, options.database)
    engine = get_engine(url)
    client = await Client.connect(temporal_address, namespace=namespace, data_converter=data_converter)
    skipper = TimeSkipper(client)
    tag = f"c{uuid.uuid4().hex[:6]}"
    queue = f"billing-chaos-{tag}"
    # A SIGKILLed worker leaves requests half-sent; the sandbox would log each as an ASGI error.
    with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}, log_level="critical") as sandbox, SandboxControl(sandbox.root_url) as control:
        location_id, plan_id = seed_clinic(engine, tag, term_months=options.months)
        rng = random.Random(options.seed)
        members = await enroll_members(
            engine, sandbox.base_url, tag, location_id=location_id, plan_id=plan_id, start_dates=start_dates(rng, options.subscriptions)
        )
        pool = WorkerPool(WorkerSpec(url, temporal_address, queue, sandbox.base_url, namespace))
        chaos = Chaos(options, pool, control, url, members)
        chaos.initial_declines()
        chaos.opening_faults()
        say(f"chaos: {options.subscriptions} subscriptions x {options.months} months on {options.workers} workers, seed {options.seed}")
        pool.start(options.workers)
        stop = asyncio.Event()
        driver = asyncio.create_task(chaos.run(stop))
        try:
            await start_workflows(skipper.client, members, task_queue=queue)
            statuses = await asyncio.wait_for(_results(client, members), timeout=options.timeout_s)
        finally:
            stop.set()
            try:
                await driver
            finally:
                pool.stop()
                unfired = sum(int(fault["remaining"]) for fault in control.faults())
                control.clear_faults()
        say("all subscriptions ended; checking the books against the gateway ...")
        terms = Terms(
            months=options.months, price_cents=PRICE_CENTS, retry_offsets_days=tuple(DEFAULT_SCHEDULE.retry_offsets_days),
            timezone=TIMEZONE, charge_at=wall(9, 0),
        )
        verdict = check(engine, control.transactions(), [Subscriber(m.subscription_id, m.start_date) for m in members], terms)
    engine.dispose()
    kills = chaos.faults.pop("worker_kill", 0)
    return {
        "subscriptions": options.subscriptions,
        "months": options.months,
        "workers": options.workers,
        "seed": options.seed,
        "double_charges": verdict.double_charges,
        "missed_cycles": verdict.missed_cycles,
        "duplicated_cycles": verdict.duplicated_cycles,
        "dunning_violations": verdict.dunning_violations,
        "ledger_balanced": verdict.ledger_balanced,
        "reconciled_with_gateway": verdict.reconciled_with_gateway,
        "worker_kills": kills,
        # Armed at the gateway or done to the database, less what the gateway never got to fire.
        "faults_injected": sum(v for k, v in chaos.faults.items() if not k.startswith("decline") and k != "db_connections_cut") - unfired,
        "faults_unfired": unfired,
        "faults_by_kind": dict(sorted(chaos.faults.items())),
        "cycles_expected": verdict.cycles_expected,
        "cycles_paid": verdict.cycles_paid,
        "declines_at_gateway": verdict.declines,
        "suspended_subscriptions": verdict.suspended,
        "final_statuses": dict(Counter(statuses)),
        "wall_seconds": round(time.monotonic() - began, 1),
        "ok": verdict.ok,
        "problems": verdict.problems[:20],
    }


async def _results(client: Client, members: list[Member]) -> list[str]:
    async def result(member: Member) -> str:
        return str(await client.get_workflow_handle(subscription_workflow_id(member.subscription_id)).result())

    return list(await asyncio.gather(*(result(m) for m in members)))



