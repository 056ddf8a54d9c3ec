"""What one cycle's charge costs the worker, alone: the charge activity without Temporal around it.

    python bench/charge_cost.py --n 300 [--concurrency 8] [--json]

`billing bench` measures whole cycles, and its ratio moves by about ±0.05 from run to run on a
shared 2-core machine; a change to the charge path worth a tenth of a millisecond is lost in that.
This runs `charge_cycle` (the activity a cycle's first attempt runs) N times, `concurrency` at a
time, on the embedded PostgreSQL (or `DATABASE_URL`'s server, in a database of its own) and the
Gravity sandbox in a process of its own, and prints this process's CPU per charge (the sandbox's
and PostgreSQL's are not in it) beside the statements and round trips each charge made. Compare
two versions of the code by running each a few times, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a plain script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foundation.contracts import ChargeRequest, SubscriptionInput
from workflows import calendar
from workflows.subscription import due_instant_of

COST_DATABASE = "billing_charge_cost"
WARMUP = 20


def first_attempt(workflow_input: SubscriptionInput) -> ChargeRequest:
    """The request the subscription workflow sends for cycle 0, attempt 1 (see `_attempt` there)."""
    setup, plan = workflow_input.setup, workflow_input.state.plan
    assert plan is not None
    period_start, period_end = calendar.period_for(setup.start_date, 0, interval_months=plan.interval_months)
    due_at = due_instant_of(setup, plan, 0)
    return ChargeRequest(
        subscription_id=setup.subscription_id,
        cycle_index=0,
        period_start=period_start,
        period_end=period_end,
        due_at=due_at,
        attempt=1,
        card_id=workflow_input.state.card_id,
        plan=plan,
        first_cycle=True,
        next_due_at=due_instant_of(setup, plan, 1),
        attempt_at=due_at,
    )


async def measure(database_url: str, gravity_url: str, n: int, concurrency: int) -> dict[str, Any]:
    """Enroll N + WARMUP members, charge the warm-up ones, then time N first attempts."""
    from temporalio.testing import ActivityEnvironment

    from activities.subscriptions import SubscriptionActivities
    from bench.population import enroll_members, local_today, seed_clinic
    from bench.worker_process import Counters, count_round_trips
    from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
    from gravity.directory import GatewayDirectory
    from models.db import get_engine

    engine = get_engine(database_url)
    location_id, plan_id = seed_clinic(engine, "cost", term_months=12)
    members = await enroll_members(engine, gravity_url, "cost", location_id=location_id, plan_id=plan_id, start_dates=[local_today()] * (n + WARMUP))
    requests = [first_attempt(member.workflow_input) for member in members]
    gateways = GatewayDirectory(gravity_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    charge = SubscriptionActivities(engine, gateways).charge_cycle
    gate = asyncio.Semaphore(concurrency)

    async def one(request: ChargeRequest) -> None:
        async with gate:
            outcome = await ActivityEnvironment().run(charge, request)
        if outcome.outcome != "paid":
            raise RuntimeError(f"charge of {request.subscription_id} was {outcome.outcome}, not paid")

    try:
        await asyncio.gather(*(one(r) for r in requests[:WARMUP]))
        counters = Counters("charge-cost")
        stop_counting = count_round_trips(engine, counters)
        before, began = os.times(), time.monotonic()
        await asyncio.gather(*(one(r) for r in requests[WARMUP:]))
        after, seconds = os.times(), time.monotonic() - began
        stop_counting()
    finally:
        await gateways.aclose()
    snapshot = counters.snapshot()
    return {
        "n": n,
        "concurrency": concurrency,
        "cpu_ms_per_charge": round(1000 * (after.user + after.system - before.user - before.system) / n, 2),
        "user_ms_per_charge": round(1000 * (after.user - before.user) / n, 2),
        "system_ms_per_charge": round(1000 * (after.system - before.system) / n, 2),
        "wall_ms_per_charge": round(1000 * seconds / n, 2),
        "statements_per_charge": round(snapshot["db_statements"] / n, 2),
        "round_trips_per_charge": round(snapshot["db_round_trips"] / n, 2),
    }


def run(n: int, concurrency: int) -> dict[str, Any]:
    from bench.database import drop_database, fresh_database
    from demo.sandbox_process import sandbox_process
    from stack.embedded import EmbeddedStack, load_settings

    # PostgreSQL only (the configured server, else the embedded one), left unmigrated: the charge
    # works in a database of its own there.
    with EmbeddedStack(load_settings(), temporal=False, migrate=False) as addresses, sandbox_process() as sandbox:
        url = fresh_database(addresses.database_url, COST_DATABASE)
        try:
            return asyncio.run(measure(url, sandbox.base_url, n, concurrency))
        finally:
            drop_database(addresses.database_url, COST_DATABASE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8, help="charges in flight at once (a worker runs up to 50)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1:
        parser.error("--n and --concurrency must be at least 1")
    report = run(args.n, args.concurrency)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    print(
        f"charge_cycle, first attempt, {report['n']} charges, {report['concurrency']} at a time:\n"
        f"  CPU per charge   {report['cpu_ms_per_charge']:.2f} ms (user {report['user_ms_per_charge']:.2f}, system {report['system_ms_per_charge']:.2f})\n"
        f"  wall per charge  {report['wall_ms_per_charge']:.2f} ms\n"
        f"  SQL statements   {report['statements_per_charge']:.1f} per charge, {report['round_trips_per_charge']:.1f} round trips"
    )


if __name__ == "__main__":
    main()
