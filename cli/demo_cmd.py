"""`billing demo`: the README's main command. Starts everything, plays a year, prints the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.service import RPCError

from cli.errors import BAD_INPUT, fail, handles_errors
from demo.record import DEMO_SANDBOX_FILE, DemoRecord, write_record
from demo.report import print_report
from demo.sandbox_process import sandbox_process
from stack.embedded import EmbeddedStack, load_settings
from stack.temporal import SIMULATED_TIME_ARGS

console = Console(highlight=False)
#: A suspended client's new card comes about 32 days after its first charge: a one-month term has ended by then.
MIN_MONTHS = 2


@handles_errors
def demo(
    clients: int = typer.Option(24, min=5, max=2000, help="How many clients (one pet and plan each)."),
    months: int = typer.Option(12, max=36, help=f"How many months of billing to play (at least {MIN_MONTHS}: the dunning stories need them)."),
    seed: int = typer.Option(7, help="Seed for who gets which card and story; the same seed plays the same year."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave the stack up afterwards to explore (Ctrl-C stops it)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON summary."),
    workers: int = typer.Option(2, min=1, max=8, help="Worker processes (one runs in this process)."),
) -> None:
    """Play a clinic group's year of health-plan billing in simulated time, then report it."""
    if months < MIN_MONTHS:
        fail(f"--months: at least {MIN_MONTHS} (a suspended client's new card comes in the second month)", code=BAD_INPUT)
    settings = load_settings()
    if settings.temporal_address:
        fail("the demo plays simulated time on the embedded Temporal dev server: unset TEMPORAL_ADDRESS to run it")
    from demo.play import DemoOptions  # on use: the demo loads every workflow and activity, which other commands need not

    options = DemoOptions(clients=clients, months=months, seed=seed, workers=workers)
    with EmbeddedStack(settings, temporal_args=SIMULATED_TIME_ARGS) as addresses:
        try:
            summary = asyncio.run(
                _play(options, addresses.database_url, addresses.temporal_address or "", addresses.temporal_namespace, addresses.data_dir, quiet=as_json)
            )
        except RPCError as error:
            if "Time-Skipping" not in str(error):
                raise
            fail("the embedded Temporal server is already running without simulated time (is `billing up` running?): stop it, then run the demo")
        if as_json:
            print(json.dumps(summary, indent=2, sort_keys=True))
        else:
            print_report(console, summary, ui_url=addresses.ui_url, namespace=addresses.temporal_namespace)
        if keep_running:
            console.print("The stack stays up: press Ctrl-C to stop.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    if not (summary["double_charges"] == 0 and summary["ledger_balanced"] and summary["reconciled_with_gateway"]):
        raise typer.Exit(code=1)


async def _play(options: Any, database_url: str, temporal_address: str, namespace: str, data_dir: Path, *, quiet: bool) -> dict[str, Any]:
    # On use: the demo and the worker's client load every workflow and activity, which other commands need not.
    from demo.play import DEMO_DATABASE, DemoRun, fresh_demo_database
    from worker import connect

    # Its state is written to the data folder as it stops, for `billing --demo reconcile` afterwards.
    with sandbox_process(ready=False, state_file=data_dir / DEMO_SANDBOX_FILE) as sandbox:  # it starts while the demo's database is made
        demo_url = fresh_demo_database(database_url)
        client = await connect(temporal_address, namespace)
        sandbox.wait_ready()
        run = DemoRun(options, client, demo_url, sandbox, temporal_address=temporal_address, namespace=namespace)
        write_record(data_dir, DemoRecord(DEMO_DATABASE, run.task_queue, namespace, sandbox_state=DEMO_SANDBOX_FILE))
        with Progress(
            TextColumn("[bold]billing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=quiet,
            transient=True,
        ) as progress:
            task = progress.add_task("seeding", total=options.clients)

            def on_progress(message: str) -> None:
                if message.startswith("seeded"):
                    progress.update(task, description=message)
                else:
                    progress.update(task, advance=1, description=message)

            try:
                summary = await run.play(on_progress, say=lambda line: progress.console.print(line, markup=False, soft_wrap=True))
            finally:
                await _end_leftovers(client, run.task_queue)
    summary["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return summary


async def _end_leftovers(client: Any, task_queue: str) -> None:
    """Terminate what the run left open (also after Ctrl-C), without hiding the run's own outcome."""
    from demo.leftovers import terminate_running

    with contextlib.suppress(Exception):
        await asyncio.wait_for(terminate_running(client, task_queue), timeout=30)


def register(app: typer.Typer) -> None:
    """Add the demo command to the `billing` app."""
    app.command("demo")(demo)
