"""The benchmark's phases: a bare-Temporal baseline, then billing cycles through the real workflow.

Every phase runs against fresh worker processes (`bench.workers`) on its own task queue, so one
phase's cached workflows and counters never leak into the next. A phase is timed from the first
workflow start to the moment the server's visibility shows every unit done: a baseline run
completed, a subscription whose `NextDueAt` search attribute has moved past now (the workflow
task after its last due charge has completed: the charge is recorded and the next cycle is
scheduled). Both sides pay for the same things: starting a workflow, its workflow tasks, its
activity, and a visibility write.

Throughput on a shared, noisy 2-core machine means little alone; it is reported as a ratio to the
baseline measured minutes earlier in the same run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pendulum
from sqlalchemy import Engine
from temporalio.client import Client

from bench.baseline import NoOpWorkflow
from bench.histories import cost_of, histories, matching_runs, mean_cost
from bench.population import enroll_members, local_today, seed_clinic, start_workflows
from bench.stack_cpu import StackCpu, sample, temporal_server
from bench.workers import WorkerPool, WorkerSpec, totals

HISTORY_SAMPLE = 40
WARMUP_MEMBERS = 8


@dataclass(frozen=True)
class Target:
    """Where the benchmark runs: one database (its own), one Temporal, one sandbox."""

    database_url: str
    temporal_address: str
    namespace: str
    gravity_url: str


@dataclass
class PhaseResult:
    name: str
    workers: int
    units: int  # workflows (baseline) or billed cycles
    seconds: float
    cpu_s: float
    rss_delta: float
    counters: dict[str, float]
    cost: dict[str, float]
    folder: Any = None  # the workers' stats, logs and profiles
    stack: StackCpu = field(default_factory=lambda: StackCpu(0.0, 0.0, 0.0))  # CPU of the server, PostgreSQL and the driver+sandbox

    @property
    def per_s(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0


async def _wait_closed(client: Client, query: str, target: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        count = (await client.count_workflows(query)).count
        if count >= target:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count} of {target} runs closed ({query}) after {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _pool(target: Target, queue: str, mode: str, **tuning: Any) -> WorkerPool:
    return WorkerPool(WorkerSpec(target.database_url, target.temporal_address, queue, target.gravity_url, target.namespace, mode=mode, **tuning))


async def _run_phase(
    client: Client, pool: WorkerPool, *, name: str, units: int, start: Any, warm: Any, query: str, warm_count: int, count: int, timeout: float
) -> PhaseResult:
    """Warm the workers up (until `warm_count` workflows match `query`), then time `start()` until
    `count` more do; `units` (workflows or cycles) is what the phase's rates are per."""
    await warm()
    await _wait_closed(client, query, warm_count, timeout=timeout)
    server = temporal_server(pool.spec.temporal_address)
    stats0, usage0, stack0 = pool.stats(), pool.usage(), sample(server)
    began = time.monotonic()
    await start()
    await _wait_closed(client, query, warm_count + count, timeout=timeout)
    seconds = time.monotonic() - began
    stats1, usage1, stack1 = pool.stats(), pool.usage(), sample(server)
    counters = {
        key: totals(stats1, key) - totals(stats0, key)
        for key in ("activities_total", "db_round_trips", "db_statements", "db_commits", "db_checkouts", "gravity_calls")
    }
    cpu = sum(usage1[n]["cpu_s"] - usage0[n]["cpu_s"] for n in usage1 if n in usage0)
    rss = sum(usage1[n]["rss"] - usage0[n]["rss"] for n in usage1 if n in usage0)
    return PhaseResult(name, len(pool.live), units, seconds, cpu, rss, counters, {}, pool.folder, stack1.minus(stack0))


async def baseline_phase(client: Client, target: Target, n: int, *, workers: int = 1, timeout: float = 600) -> PhaseResult:
    queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    pool = _pool(target, queue, "baseline")
    pool.start(workers)
    query = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Completed'"

    async def launch(prefix: str, count: int) -> None:
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with gate:
                await client.start_workflow(NoOpWorkflow.run, i, id=f"{queue}-{prefix}-{i}", task_queue=queue)

        await asyncio.gather(*(one(i) for i in range(count)))

    try:
        result = await _run_phase(
            client,
            pool,
            name="baseline",
            units=n,
            warm=lambda: launch("warm", WARMUP_MEMBERS),
            start=lambda: launch("run", n),
            query=query,
            warm_count=WARMUP_MEMBERS,
            count=n,
            timeout=timeout,
        )
        runs = await matching_runs(client, query, limit=HISTORY_SAMPLE)
        result.cost = mean_cost([cost_of(h) for h in await histories(client, runs)])
        return result
    finally:
        pool.stop()


async def billing_phase(
    client: Client, engine: Engine, target: Target, n: int, *, cycles_each: int, workers: int = 1, timeout: float = 900, **tuning: Any
) -> PhaseResult:
    """`n` subscriptions with `cycles_each` (1 or 2) cycles already due, all billed at once."""
    tag = f"b{uuid.uuid4().hex[:6]}"
    queue = f"bench-billing-{tag}"
    location_id, plan_id = seed_clinic(engine, tag, term_months=12)
    start = due_start_date(cycles_each)
    warm = await enroll_members(engine, target.gravity_url, f"{tag}w", location_id=location_id, plan_id=plan_id, start_dates=[start] * WARMUP_MEMBERS)
    members = await enroll_members(engine, target.gravity_url, tag, location_id=location_id, plan_id=plan_id, start_dates=[start] * n)
    pool = _pool(target, queue, "billing", **tuning)
    pool.start(workers)
    query = billed_query(queue)
    try:
        result = await _run_phase(
            client,
            pool,
            name=f"billing x{cycles_each}",
            units=n * cycles_each,
            warm=lambda: start_workflows(client, warm, task_queue=queue),
            start=lambda: start_workflows(client, members, task_queue=queue),
            query=query,
            warm_count=WARMUP_MEMBERS,
            count=n,
            timeout=timeout,
        )
        # A run bills every due cycle before it continues as new (every 12 cycles), so the history
        # of one run so far is the cost of its `cycles_each` cycles.
        runs = await matching_runs(client, f"TaskQueue = '{queue}'", limit=HISTORY_SAMPLE)
        costs = [cost_of(h) for h in await histories(client, runs)]
        result.cost = {key: value / cycles_each for key, value in mean_cost(costs).items()}
        return result
    finally:
        pool.stop()


def billed_query(queue: str) -> str:
    """Visibility query for the subscriptions on `queue` that have billed every cycle due now: the
    workflow publishes the next due date after each billed cycle, so it is ahead of now."""
    return f"TaskQueue = '{queue}' AND NextDueAt > '{pendulum.now('UTC').to_iso8601_string()}'"


def due_start_date(cycles_due: int) -> Any:
    """A start date whose first `cycles_due` cycles are already due: local yesterday, minus one
    month per extra cycle (cycle k falls on the anchor day k months later, 09:00 local plus at most
    15 minutes of spread, so all of them are in the past)."""
    today = local_today()
    return pendulum.date(today.year, today.month, today.day).subtract(days=1).subtract(months=cycles_due - 1)


def per_unit(result: PhaseResult) -> dict[str, float]:
    units = max(1, result.units)
    return {
        "per_s": round(result.per_s, 2),
        "seconds": round(result.seconds, 2),
        "units": result.units,
        "workers": result.workers,
        "events": round(result.cost.get("events", 0), 2),
        "workflow_tasks": round(result.cost.get("workflow_tasks", 0), 2),
        "activities": round(result.cost.get("activities", 0), 2),
        "local_activities": round(result.cost.get("local_activities", 0), 2),
        "activities_run": round(result.counters["activities_total"] / units, 2),
        "db_round_trips": round(result.counters["db_round_trips"] / units, 2),
        "db_statements": round(result.counters["db_statements"] / units, 2),
        "gravity_calls": round(result.counters["gravity_calls"] / units, 2),
        "worker_cpu_ms": round(1000 * result.cpu_s / units, 2),
        "worker_rss_kib_per_workflow": round(result.rss_delta / 1024 / units, 1),
        "temporal_cpu_ms": round(1000 * result.stack.temporal_s / units, 2),
        "postgres_cpu_ms": round(1000 * result.stack.postgres_s / units, 2),
        "driver_cpu_ms": round(1000 * result.stack.driver_s / units, 2),
    }


def profile_summary(folder: Any, top: int = 25) -> str:
    """The hottest functions of the profiled worker(s) by own time (main thread: the event loop,
    workflow activations, activity coroutines; the database calls run in threads and show as waits)."""
    import io
    import pstats
    from pathlib import Path

    files = sorted(str(p) for p in Path(folder).glob("*.prof"))
    if not files:
        return "(no profile written)"
    out = io.StringIO()
    stats = pstats.Stats(*files, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def run_benchmark(client: Client, engine: Engine, target: Target, n: int, *, scale: tuple[int, ...] = (), say: Any = print) -> dict[str, Any]:
    """Baseline, first cycles, steady-state second cycles, baseline again, and optionally 1/2/4-worker
    scaling. The baseline brackets the billing phases and the ratios use the mean of both, so a
    machine that gets busier or quieter during the run (the server's SQLite file grows, a neighbour
    starts work) moves both sides of the ratio alike.

    The steady state is a second cycle due at once, so the run bills it in the workflow task that
    billed the first (the charge is a local activity): it pays no workflow task of its own. A cycle
    a month after the last is woken by its timer and pays one: 7 events in all (timer fired, the
    task's three, the charge's marker, the NextDueAt upsert, the next timer), as the recorded
    history `tests/histories/declined_recovered_local_charge_run0.json` shows. The first cycle,
    which also starts the run, is the upper bound of both."""
    say(f"baseline: {n} no-op workflows ...")
    base = await baseline_phase(client, target, n)
    say(f"billing: {n} subscriptions due at once ...")
    first = await billing_phase(client, engine, target, n, cycles_each=1)
    say(f"steady state: {n} subscriptions with two cycles due (the second in the same, cached run) ...")
    second = await billing_phase(client, engine, target, n, cycles_each=2)
    say(f"baseline again: {n} no-op workflows ...")
    base_after = await baseline_phase(client, target, n)
    # Its history costs are per cycle over two cycles; the second cycle's own cost is what a
    # running subscription pays each month: the two cycles' total less the first cycle's.
    second.cost = {key: 2 * value - first.cost.get(key, 0.0) for key, value in second.cost.items()}
    b, f, s = per_unit(base), per_unit(first), per_unit(second)
    b["per_s"] = round((base.per_s + base_after.per_s) / 2, 2)
    report: dict[str, Any] = {
        "n": n,
        "baseline_per_s": b["per_s"],
        "baseline_runs_per_s": [round(base.per_s, 2), round(base_after.per_s, 2)],
        "cycles_per_s": f["per_s"],
        "ratio": round(f["per_s"] / b["per_s"], 3) if b["per_s"] else 0.0,
        "events_per_cycle": f["events"],
        "activities_per_cycle": f["activities"],
        "workflow_tasks_per_cycle": f["workflow_tasks"],
        "db_round_trips_per_cycle": f["db_round_trips"],
        "gravity_calls_per_cycle": f["gravity_calls"],
        "worker_cpu_ms_per_cycle": f["worker_cpu_ms"],
        "worker_kib_per_cached_workflow": f["worker_rss_kib_per_workflow"],
        "steady_state_cycles_per_s": s["per_s"],
        "steady_state_ratio": round(s["per_s"] / b["per_s"], 3) if b["per_s"] else 0.0,
        "steady_state_events_per_cycle": s["events"],
        "baseline": b,
        "first_cycle": f,
        "steady_state": s,
    }
    if scale:
        runs: dict[str, Any] = {}
        for count in scale:
            say(f"scale-out: {n} subscriptions over {count} worker process(es) ...")
            result = per_unit(await billing_phase(client, engine, target, n, cycles_each=1, workers=count))
            runs[str(count)] = result["per_s"]
        one = runs.get(str(scale[0])) or 0.0
        report["scale_out_per_s"] = runs
        report["scale_out_ratio"] = {k: round(v / one, 3) if one else 0.0 for k, v in runs.items()}
    return report
