"""The chaos run on the embedded stack (time skipping on), as a plain script or via `billing chaos`.

    python bench/run_chaos.py --subscriptions 200 --months 12 --workers 3 --seed 7 [--json]

Exits 1 if any invariant fails (see `bench.invariants`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a plain script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(subscriptions: int, months: int, workers: int, seed: int, *, quiet: bool = False) -> dict[str, Any]:
    """Start the embedded stack with time skipping, play the chaos, stop it."""
    from bench.chaos import ChaosOptions, chaos_on
    from stack.embedded import EmbeddedStack, load_settings
    from stack.temporal import SIMULATED_TIME_ARGS

    settings = load_settings()
    if settings.temporal_address:
        raise SystemExit("the chaos run plays simulated time on the embedded Temporal dev server: unset TEMPORAL_ADDRESS")
    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    options = ChaosOptions(subscriptions=subscriptions, months=months, workers=workers, seed=seed)
    # Not migrated: the chaos run works in a database of its own on that server (`ChaosOptions.database`).
    with EmbeddedStack(settings, migrate=False, temporal_args=SIMULATED_TIME_ARGS) as addresses:
        return asyncio.run(chaos_on(addresses.database_url, addresses.temporal_address or "", addresses.temporal_namespace, options, say=say))


def format_summary(summary: dict[str, Any]) -> str:
    verdict = "PASSED" if summary["ok"] else "FAILED"
    lines = [
        f"chaos {verdict}: {summary['subscriptions']} subscriptions x {summary['months']} months on {summary['workers']} workers, seed {summary['seed']}"
        f" ({summary['wall_seconds']} s)",
        f"  double charges        {summary['double_charges']}",
        f"  missed cycles         {summary['missed_cycles']}",
        f"  duplicated cycles     {summary['duplicated_cycles']}",
        f"  dunning violations    {summary['dunning_violations']}",
        f"  ledger balanced       {summary['ledger_balanced']}",
        f"  matches the gateway   {summary['reconciled_with_gateway']}",
        f"  cycles expected/paid  {summary['cycles_expected']} / {summary['cycles_paid']}"
        f" ({summary['declines_at_gateway']} declines, {summary['suspended_subscriptions']} suspended)",
        f"  worker kills          {summary['worker_kills']}",
        f"  faults injected       {summary['faults_injected']} (armed, never reached: {summary['faults_unfired']})  "
        + ", ".join(f"{k} {v}" for k, v in summary["faults_by_kind"].items()),
        f"  final statuses        {summary['final_statuses']}",
    ]
    lines += [f"  ! {p}" for p in summary["problems"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Billing under crashes, gateway faults, cut connections and declines.")
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    summary = run(args.subscriptions, args.months, args.workers, args.seed, quiet=args.json)
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
    raise SystemExit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
