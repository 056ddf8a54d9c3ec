"""`billing bench` and `billing chaos`: the two claims ("fast", "never double-charges") as numbers.

Both start the embedded stack (or use the configured PostgreSQL), work in a database of their own
and run their workers as separate processes; see `bench/` for what they measure and check.
"""

from __future__ import annotations

import json

import typer

from bench import run_bench, run_chaos
from cli.errors import handles_errors


@handles_errors
def bench(
    n: int = typer.Option(200, "--n", min=1, max=100_000, help="Workflows per phase (baseline, first cycles, steady state)."),
    scale: str = typer.Option("", help="Also time first cycles with these worker-process counts, e.g. 1,2,4."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    finance: bool = typer.Option(False, "--finance", help="Instead: seed a clinic group's three years of books and time the API's lists, reports and exports."),
    subscriptions: int = typer.Option(100_000, "--subscriptions", min=1, max=1_000_000, help="With --finance: subscriptions in the seeded group."),
    requests: int = typer.Option(50, "--requests", min=1, max=10_000, help="With --finance: timed calls per route."),
    database: str = typer.Option(
        "",
        "--database",
        help="With --finance: the database to seed (dropped after; default $BILLING_BENCH_FINANCE_DATABASE or billing_bench_finance).",
    ),
) -> None:
    """Billing cycles per second against bare Temporal no-op workflows, with per-cycle costs (--finance: API timings at scale)."""
    if finance:
        from bench import finance_timing, run_finance

        try:
            name = run_finance.database_name(database or None)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--database") from None
        report = run_finance.run(subscriptions, requests=requests, quiet=as_json, database=name)
        typer.echo(json.dumps(report, indent=2, sort_keys=True, default=str) if as_json else finance_timing.format_report(report))
        return
    counts = tuple(int(part) for part in scale.split(",") if part.strip())
    report = run_bench.run(n, scale=counts, quiet=as_json)
    typer.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else run_bench.format_report(report))


@handles_errors
def chaos(
    subscriptions: int = typer.Option(50, min=1, max=100_000, help="How many subscriptions."),
    months: int = typer.Option(3, min=1, max=36, help="Simulated months of billing."),
    workers: int = typer.Option(2, min=1, max=32, help="Worker processes (killed and restarted at random)."),
    seed: int = typer.Option(1, help="Seed of the chaos script (declines, faults, kills, operations)."),
    mix: bool = typer.Option(True, "--mix/--no-mix", help="Front-desk operations racing the cycles (payments, refunds, cancels, changes)."),
    faults: str = typer.Option("all", help="Fault kinds, comma-separated: worker-kill, gateway, db-cut, decline, temporal-restart, postgres-stop (or all)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Bill while workers die, the gateway fails, servers restart and the front desk acts; exit 1 if any invariant breaks."""
    try:
        kinds = run_chaos.parse_faults(faults)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--faults") from None
    summary = run_chaos.run(subscriptions, months, workers, seed, mix=mix, faults=kinds, quiet=as_json)
    typer.echo(json.dumps(summary, indent=2, sort_keys=True) if as_json else run_chaos.format_summary(summary))
    if not summary["ok"]:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the measurement commands to the `billing` app."""
    app.command("bench")(bench)
    app.command("chaos")(chaos)
