"""The billing benchmark against bare Temporal, on the embedded stack.

    python bench/run_bench.py --n 200 [--json] [--scale 1,2,4] [--profile]
    billing bench --n 200            (the same, from the CLI)

Starts the embedded stack (PostgreSQL and the Temporal dev server, the server on a fresh store of
its own; or the configured ones), a fresh database of its own (`billing_bench`), the Gravity
sandbox in-process, then measures (see `bench.measure`): (a) N no-op workflows, before and again
after the rest; (b) N subscriptions with a cycle due now; (c) N with two cycles due (the second is
billed by the same cached run: the steady state). Prints cycles per second, the ratio to the
baseline and the per-cycle costs, the worker's and the rest of the stack's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a plain script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from stack.embedded import EmbeddedStack

BENCH_DATABASE = "billing_bench"
# The dev server's store for the benchmark, emptied before each run, because the shared store grows
# with every demo, chaos and bench run and its visibility queries slow with it, so runs on it would
# not be comparable.
BENCH_TEMPORAL_STORE = "temporal-bench.sqlite"


async def bench_on(database_url: str, temporal_address: str, namespace: str, n: int, *, scale: tuple[int, ...] = (), say: Any = print) -> dict[str, Any]:
    """Run the benchmark on an already running PostgreSQL server and Temporal."""
    from bench.database import fresh_database
    from bench.measure import Target, run_benchmark
    from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
    from gravity.sandbox.server import SandboxServer
    from models.db import get_engine
    from worker import connect

    url = fresh_database(database_url, BENCH_DATABASE)
    engine = get_engine(url)
    client = await connect(temporal_address, namespace)
    with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}) as sandbox:
        target = Target(url, temporal_address, namespace, sandbox.base_url)
        report = await run_benchmark(client, engine, target, n, scale=scale, say=say)
    engine.dispose()
    return report


def bench_stack(store: str = BENCH_TEMPORAL_STORE) -> EmbeddedStack:
    """The embedded stack for a benchmark: when it starts the Temporal dev server, the server gets a
    fresh store of its own (`store`). The configured database is left as it is (not migrated): the
    benchmark works in a database of its own on that server."""
    from stack.embedded import EmbeddedStack, load_settings

    settings = load_settings()
    for leftover in Path(settings.data_dir).expanduser().glob(store + "*"):
        leftover.unlink()
    return EmbeddedStack(settings, migrate=False, temporal_store=store)


def run(n: int, *, scale: tuple[int, ...] = (), quiet: bool = False) -> dict[str, Any]:
    """Start the embedded stack, benchmark, stop it."""
    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    with bench_stack() as addresses:
        return asyncio.run(bench_on(addresses.database_url, addresses.temporal_address or "", addresses.temporal_namespace, n, scale=scale, say=say))


def run_profile(n: int) -> str:
    """Bill `n` first cycles on one cProfile'd worker process; return the top functions."""
    from bench.database import fresh_database
    from bench.measure import Target, billing_phase, profile_summary
    from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
    from gravity.sandbox.server import SandboxServer
    from models.db import get_engine
    from worker import connect

    async def go(database_url: str, temporal_address: str, namespace: str) -> str:
        url = fresh_database(database_url, BENCH_DATABASE)
        engine = get_engine(url)
        client = await connect(temporal_address, namespace)
        with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}) as sandbox:
            result = await billing_phase(client, engine, Target(url, temporal_address, namespace, sandbox.base_url), n, cycles_each=1, profile=True)
        return f"{result.per_s:.1f} cycles/s under the profiler\n" + profile_summary(result.folder)

    with bench_stack() as addresses:
        return asyncio.run(go(addresses.database_url, addresses.temporal_address or "", addresses.temporal_namespace))


def format_report(report: dict[str, Any]) -> str:
    b, f, s = report["baseline"], report["first_cycle"], report["steady_state"]
    lines = [
        f"n = {report['n']} (one worker process; 2-core shared machine: read the ratios, not the speeds)",
        f"baseline (no-op workflow + 1 activity): {report['baseline_per_s']:.1f} workflows/s "
        f"(mean of {' and '.join(f'{x:.1f}' for x in report['baseline_runs_per_s'])}: before and after billing)",
        f"billing, first cycle:                  {report['cycles_per_s']:.1f} cycles/s   ratio {report['ratio']:.2f}",
        f"billing, steady state (2nd cycle):     {report['steady_state_cycles_per_s']:.1f} cycles/s   ratio {report['steady_state_ratio']:.2f}",
        "",
        f"{'per unit':<28}{'baseline':>10}{'cycle 1':>10}{'steady':>10}",
    ]
    rows = (
        ("history events", "events"),
        ("workflow tasks", "workflow_tasks"),
        ("activities (incl. local)", "activities"),
        ("  of which local", "local_activities"),
        ("database round trips", "db_round_trips"),
        ("  SQL statements", "db_statements"),
        ("Gravity calls", "gravity_calls"),
        ("worker CPU ms", "worker_cpu_ms"),
        ("worker KiB / cached wf", "worker_rss_kib_per_workflow"),
        ("Temporal server CPU ms", "temporal_cpu_ms"),
        ("PostgreSQL CPU ms", "postgres_cpu_ms"),
        ("driver + sandbox CPU ms", "driver_cpu_ms"),
    )
    for label, key in rows:
        lines.append(f"{label:<28}{b[key]:>10}{f[key]:>10}{s[key]:>10}")
    if "scale_out_ratio" in report:
        lines.append("")
        lines.append(
            "scale-out (first cycles, same n): "
            + ", ".join(f"{k} worker(s) {report['scale_out_per_s'][k]:.1f}/s (x{v:.2f})" for k, v in report["scale_out_ratio"].items())
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Billing cycles per second against bare Temporal.")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--scale", default="", help="also time first cycles with these worker counts, e.g. 1,2,4")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="only profile one worker billing N first cycles (cProfile)")
    args = parser.parse_args(argv)
    if args.profile:
        print(run_profile(args.n))
        return
    scale = tuple(int(x) for x in args.scale.split(",") if x.strip())
    report = run(args.n, scale=scale, quiet=args.json)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))


if __name__ == "__main__":
    main()
