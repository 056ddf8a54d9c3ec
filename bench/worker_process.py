"""One billing worker in its own OS process, instrumented for the benchmark and the chaos run.

    python -m bench.worker_process --database-url URL --temporal HOST:PORT --task-queue Q \
        --gravity-url URL --stats FILE [--name NAME] [--mode billing|baseline] [--db-pool N]

Why a separate process: the benchmark must measure the worker alone (its CPU, memory and database
round trips, not the driver's), the chaos run must SIGKILL workers mid-charge, and the scale-out test
must show several processes sharing one task queue (one Python process is about one core).

What it counts, in its own process, and writes to `--stats` as JSON (atomically: temp file and
rename) every half second and at once on SIGUSR1:

- activities run, by type (local activities included), and how many raised;
- database round trips: statements (SQLAlchemy `before_cursor_execute`), commits and rollbacks, and
  pool checkouts (each one is a `pool_pre_ping` round trip too);
- Gravity HTTP requests (an httpx event hook on every client the worker creates).

`--mode baseline` runs the bare-Temporal baseline instead (`bench.baseline`): one no-op workflow
with one no-op activity, with the billing worker's own settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from temporalio import activity, client as temporal_client
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from foundation.converter import data_converter
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.directory import GatewayDirectory


class Counters:
    """Everything this worker process counts; `snapshot()` is what goes to the stats file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.activities: Counter[str] = Counter()
        self.activity_errors: Counter[str] = Counter()
        self.db_statements = 0
        self.db_commits = 0
        self.db_rollbacks = 0
        self.db_checkouts = 0
        self.gravity_calls = 0
        self.seq = 0

    def snapshot(self) -> dict[str, Any]:
        usage = os.times()
        self.seq += 1
        return {
            "name": self.name,
            "pid": os.getpid(),
            "seq": self.seq,
            "at": time.time(),
            "activities": dict(self.activities),
            "activity_errors": dict(self.activity_errors),
            "activities_total": sum(self.activities.values()),
            "db_statements": self.db_statements,
            "db_commits": self.db_commits,
            "db_rollbacks": self.db_rollbacks,
            "db_checkouts": self.db_checkouts,
            "db_round_trips": self.db_statements + self.db_commits + self.db_rollbacks + self.db_checkouts,
            "gravity_calls": self.gravity_calls,
            "cpu_s": usage.user + usage.system,
        }


class _CountingActivities(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, counters: Counters) -> None:
        super().__init__(next)
        self._counters = counters

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        kind = activity.info().activity_type
        self._counters.activities[kind] += 1
        try:
            return await super().execute_activity(input)
        except BaseException:
            self._counters.activity_errors[kind] += 1
            raise


class CountingInterceptor(temporal_client.Interceptor, Interceptor):
    """Counts every activity (and local activity) this worker runs (given to the client, which hands
    it on to the worker)."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountingActivities(next, self._counters)


class CountingGateways(GatewayDirectory):
    """The worker's Gravity clients, each with a request hook that counts HTTP calls."""

    def __init__(self, base_url: str, counters: Counters) -> None:
        super().__init__(base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
        self._counters = counters

    def for_oid(self, oid: str) -> GravityClient:
        fresh = oid not in self._clients
        client = super().for_oid(oid)
        if fresh:

            async def count(request: object) -> None:
                self._counters.gravity_calls += 1

            client._http.event_hooks["request"].append(count)  # bench-only instrumentation
        return client


def count_round_trips(engine: Engine, counters: Counters) -> Callable[[], None]:
    """Count `engine`'s statements, commits, rollbacks and checkouts into `counters`; returns what
    stops the counting (a worker counts for its life; a shorter run stops)."""
    log_sql = os.environ.get("BENCH_LOG_SQL") == "1"

    def on_statement(conn: object, cursor: object, statement: str, *_: object) -> None:
        counters.db_statements += 1
        if log_sql:
            print("SQL", " ".join(statement.split())[:160], flush=True)

    def on_commit(*_: object) -> None:
        counters.db_commits += 1

    def on_rollback(*_: object) -> None:
        counters.db_rollbacks += 1

    def on_checkout(*_: object) -> None:
        counters.db_checkouts += 1

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", on_statement),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine.pool, "checkout", on_checkout),
    ]
    for target, name, listener in listeners:
        event.listen(target, name, listener)

    def stop() -> None:
        for target, name, listener in listeners:
            event.remove(target, name, listener)

    return stop


def write_stats(path: Path, counters: Counters) -> None:
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(json.dumps(counters.snapshot()))
    os.replace(temp, path)


def _override(template: Worker, task_queue: str, **changes: Any) -> Worker:
    """A worker with the template's settings (`worker.build_worker`'s), some changed. The template
    was built for another task queue (the SDK refuses two workers on one queue in a process) and is
    never run."""
    config: dict[str, Any] = dict(template.config())
    config.update({k: v for k, v in changes.items() if v is not None})
    config["task_queue"] = task_queue
    return Worker(**config)


async def serve(args: argparse.Namespace) -> None:
    from models.db import get_engine
    from worker import build_worker, stop_on_signals

    counters = Counters(args.name)
    stats = Path(args.stats)
    client = await Client.connect(args.temporal, namespace=args.namespace, data_converter=data_converter, interceptors=[CountingInterceptor(counters)])
    engine = get_engine(args.database_url, args.db_pool)
    count_round_trips(engine, counters)
    gateways = CountingGateways(args.gravity_url, counters)
    tuning = {
        "max_concurrent_activities": args.max_activities,
        "max_concurrent_workflow_tasks": args.max_workflow_tasks,
        "max_concurrent_local_activities": args.max_local_activities,
        "max_cached_workflows": args.max_cached,
    }
    if os.environ.get("BENCH_UNSANDBOXED") == "1":  # experiment: what the workflow sandbox costs per run
        from temporalio.worker import UnsandboxedWorkflowRunner

        tuning["workflow_runner"] = UnsandboxedWorkflowRunner()
    if args.mode == "baseline":
        from bench.baseline import NoOpWorkflow, no_op

        template = build_worker(client, engine, gateways, task_queue=args.task_queue + "-template")
        worker = _override(template, args.task_queue, workflows=[NoOpWorkflow], activities=[no_op], **tuning)
    elif any(v is not None for v in tuning.values()):
        template = build_worker(client, engine, gateways, task_queue=args.task_queue + "-template")
        worker = _override(template, args.task_queue, **tuning)
    else:
        worker = build_worker(client, engine, gateways, task_queue=args.task_queue)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, write_stats, stats, counters)
    stop = stop_on_signals()

    parent = os.getppid()

    async def keep_writing() -> None:
        while True:
            write_stats(stats, counters)
            if os.getppid() != parent:  # the driver died without stopping us: do not linger
                stop.set()
            await asyncio.sleep(0.5)

    writer = asyncio.create_task(keep_writing())
    try:
        async with worker:
            write_stats(stats, counters)
            print(f"worker {args.name} ready", flush=True)
            await stop.wait()
    finally:
        writer.cancel()
        write_stats(stats, counters)
        await gateways.aclose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_process", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--temporal", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--gravity-url", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--mode", choices=("billing", "baseline"), default="billing")
    parser.add_argument("--db-pool", type=int, default=10)
    parser.add_argument("--max-activities", type=int)
    parser.add_argument("--max-workflow-tasks", type=int)
    parser.add_argument("--max-local-activities", type=int)
    parser.add_argument("--max-cached", type=int)
    parser.add_argument("--profile", help="write a cProfile of the whole process here at exit (SIGTERM)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    if not args.profile:
        asyncio.run(serve(args))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(args))
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
