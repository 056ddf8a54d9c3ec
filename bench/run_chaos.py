"""The chaos run on servers of its own (time skipping on), as a plain script or via `billing chaos`.

    python bench/run_chaos.py --subscriptions 200 --months 12 --workers 3 --seed 7 [--json] [--no-mix] [--faults ...]

The run starts its own Temporal dev server (a fresh store in a temp folder, on free ports), so it
may kill and restart it. PostgreSQL is the configured DATABASE_URL, left alone (its stop fault is
skipped), or the embedded one of the data folder, stopped and restarted when this run started it.
Exits 1 if any invariant fails (see `bench.invariants`, `bench.money_invariants`, `bench.workflow_checks`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a plain script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(
    subscriptions: int, months: int, workers: int, seed: int, *, mix: bool = True, faults: frozenset[str] | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Start the servers the chaos owns, play the chaos, stop them."""
    from bench.chaos import FAULT_KINDS, ChaosOptions, chaos_on
    from bench.chaos_servers import owned_temporal
    from stack.embedded import load_settings

    settings = load_settings()
    if settings.temporal_address:
        raise SystemExit("the chaos run plays simulated time on a Temporal dev server of its own: unset TEMPORAL_ADDRESS")
    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    options = ChaosOptions(
        subscriptions=subscriptions, months=months, workers=workers, seed=seed, mix=mix, faults=frozenset(FAULT_KINDS) if faults is None else faults
    )
    # Not migrated: the chaos run works in a database of its own on that server (`ChaosOptions.database`).
    with _postgres(settings) as (server_url, postgres), owned_temporal() as temporal:
        return asyncio.run(chaos_on(server_url, temporal.address, "default", options, say=say, temporal=temporal, postgres=postgres))


@contextmanager
def _postgres(settings: Any) -> Iterator[tuple[str, Any]]:
    """(server URL, the embedded server when there is one) - a configured one is only used."""
    if settings.database_url:
        yield settings.database_url, None
        return
    from bench.chaos_servers import embedded_postgres

    with embedded_postgres(settings.data_dir) as postgres:
        yield postgres.url, postgres


def parse_faults(text: str) -> frozenset[str]:
    """A comma-separated list of fault kinds ("all": every one), checked against the known kinds."""
    from bench.chaos import FAULT_KINDS

    wanted = {part.strip().replace("-", "_") for part in text.split(",") if part.strip()}
    if wanted == {"all"}:
        return frozenset(FAULT_KINDS)
    unknown = wanted - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(sorted(unknown))}; known: {', '.join(FAULT_KINDS)}")
    return frozenset(wanted)


def format_summary(summary: dict[str, Any]) -> str:
    verdict = "PASSED" if summary["ok"] else "FAILED"
    missed = "missed cycles" + (f" ({summary['control_subscriptions']} untouched)" if summary.get("mix") else "")
    money, workflows = summary["money"], summary["workflows"]
    lines = [
        f"chaos {verdict}: {summary['subscriptions']} subscriptions x {summary['months']} months on {summary['workers']} workers, seed {summary['seed']}"
        f" ({summary['wall_seconds']} s)",
        f"  double charges        {summary['double_charges']}",
        f"  {missed:<21} {summary['missed_cycles']}",
        f"  duplicated cycles     {summary['duplicated_cycles']}",
        f"  dunning violations    {summary['dunning_violations']}",
        f"  ledger balanced       {summary['ledger_balanced']}",
        f"  matches the gateway   {summary['reconciled_with_gateway']}",
        f"  invoices overcharged  {money['overcharged_invoices']} of {money['invoices_checked']}",
        f"  credit negative / off {money['negative_credit']} / {money['credit_ledger_mismatches']}",
        f"  charged after cancel  {money['charged_after_cancellation']} (invoiced after: {money['invoiced_after_cancellation']})",
        f"  activity attempts     max {workflows['max_activity_attempts']}, over 20: {workflows['activities_over_20_attempts']}"
        f" (still retrying: {workflows['still_retrying_over_20_attempts']})"
        f" ({workflows['runs_checked']} runs)",
        f"  updates left running  {workflows['updates_left_running']}",
        f"  status disagreements  {workflows['status_disagreements']} (ended in no final status: {workflows['ended_not_final']})",
        f"  cycles expected/paid  {summary['cycles_expected']} / {summary['cycles_paid']}"
        f" ({summary['declines_at_gateway']} declines, {summary['suspended_subscriptions']} suspended)",
        f"  worker kills          {summary['worker_kills']}",
        f"  faults injected       {summary['faults_injected']} (armed, never reached: {summary['faults_unfired']})  "
        + ", ".join(f"{k} {v}" for k, v in summary["faults_by_kind"].items()),
    ]
    lines += [f"  fault skipped         {kind}: {why}" for kind, why in summary["faults_skipped"].items()]
    lines += [f"  janitor               {summary['janitor']}"]
    for kind, counts in summary.get("operations", {}).items():
        lines.append(f"  op {kind:<19} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(f"  final statuses        {summary['final_statuses']}")
    lines += [f"  ! {p}" for p in summary["problems"]]
    lines += [f"  ? {e}" for e in summary.get("operation_errors", [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Billing under crashes, gateway faults, cut connections and declines.")
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-mix", action="store_true", help="no operations racing the cycles: the exact dunning checks for all")
    parser.add_argument("--faults", default="all", help="comma-separated fault kinds, or all")
    args = parser.parse_args(argv)
    summary = run(args.subscriptions, args.months, args.workers, args.seed, mix=not args.no_mix, faults=parse_faults(args.faults), quiet=args.json)
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
    raise SystemExit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
