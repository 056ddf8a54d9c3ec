"""`billing reconcile --date D`: do our books match the gateway for a day, transaction by transaction.

The comparison is `operations.gateway_day` (over `operations.reconciliation.reconcile`, the one the
demo uses); the gateway's list of transactions comes from the local sandbox, the only gateway whose
full list this engine can read (on Gravity itself the daily `reconciliation.*` events report
differences, by looking each of our transactions up).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import typer

from cli.errors import BAD_INPUT, fail
from cli.operator_stack import Connection, connection, console, engine_of, operator_errors, print_json, refuse


def reconcile(
    day: str = typer.Option(..., "--date", help="The day, YYYY-MM-DD (on each location's calendar)."),
    location_id: str | None = typer.Option(None, "--location", help="Only this location."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compare a day's card payments, refunds and voids in our books with the gateway's, both ways.

    Prints how many matched and each difference; exits 1 when they differ (or a double charge
    shows, or the ledger does not balance), 0 when the books match.
    """
    from operations.gateway_day import DayRefused, reconcile_day

    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        refuse(f"--date: {day!r} is not a date (YYYY-MM-DD)", as_json=as_json, code=BAD_INPUT)
    conn = connection(temporal=False)
    rows = _gateway_rows(conn)
    with operator_errors(conn, as_json=as_json):
        try:
            checked = reconcile_day(engine_of(conn), rows, wanted, location_id=location_id)
        except DayRefused as error:
            refuse(str(error), as_json=as_json, code=BAD_INPUT)
    result = checked.result
    differ = bool(result.mismatches) or result.double_charges > 0 or not result.ledger_balanced
    if as_json:
        print_json(
            {
                "date": wanted.isoformat(),
                "locations": checked.location_ids,
                "compared": result.compared,
                "matched": checked.matched,
                "mismatches": result.mismatches,
                "double_charges": result.double_charges,
                "ledger_balanced": result.ledger_balanced,
                "reconciled": not differ,
            }
        )
    else:
        _print(checked, differ)
    if differ:
        raise typer.Exit(code=1)


def _gateway_rows(conn: Connection) -> list[Mapping[str, Any]]:
    from gravity.sandbox.control import SandboxControl, SandboxControlError
    from stack.gravity_config import uses_sandbox
    from stack.sandbox import sandbox_root_url

    if not uses_sandbox(conn.settings):
        fail("billing reconcile reads the gateway's transaction list from the local sandbox only; on Gravity, see the reconciliation.* events")
    root = sandbox_root_url(conn.settings)
    try:
        with SandboxControl(root) as control:
            return list(control.transactions())
    except (OSError, SandboxControlError) as error:  # httpx's connection errors are OSErrors
        fail(f"no sandbox answers at {root} ({error}): start billing up")


def _print(checked: Any, differ: bool) -> None:
    result = checked.result
    where = ", ".join(checked.location_ids) or "no location"
    console.print(f"{checked.day.isoformat()} at {where}: {result.compared} transaction(s) compared, {checked.matched} matched")
    for line in result.mismatches:
        console.print(f"[red]differs[/red] {line}")
    console.print(f"double charges (from the gateway's own list): {result.double_charges}")
    console.print(f"ledger balanced: {'yes' if result.ledger_balanced else '[bold red]no[/bold red]'}")
    console.print("[bold red]the books do not match the gateway[/bold red]" if differ else "[green]the books match the gateway[/green]")


def register(app: typer.Typer) -> None:
    """Add `billing reconcile` to the `billing` app."""
    app.command("reconcile")(reconcile)
