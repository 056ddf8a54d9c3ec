"""`billing reconcile --from --to` (or `--date`): do our books match the gateway over a period.

The comparison is `operations.period_reconciliation.reconcile_period`, the one `GET
/finance/reconciliation` and the daily janitor run: each of our movements looked up at the gateway,
plus the gateway's own list where it has one (the local sandbox; emergepay has none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import typer

from cli.errors import BAD_INPUT
from cli.operator_stack import Connection, connection, console, engine_of, err_console, operator_errors, option_day, print_json, refuse, run
from foundation.money import format_usd

if TYPE_CHECKING:
    from gravity.directory import GatewayDirectory

PROGRESS_AFTER_S = 1.0  # a reconciliation quicker than this prints no progress line
#: The CLI's name for each parameter a finance refusal names.
OPTION_OF = {"date": "--date", "from": "--from", "to": "--to", "location_id": "--location"}


def reconcile(
    day: str | None = typer.Option(None, "--date", help="One day, YYYY-MM-DD (on each location's calendar): --from and --to in one."),
    start: str | None = typer.Option(None, "--from", help="The period's first day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="The period's last day, YYYY-MM-DD (at most 92 days after --from)."),
    location_id: str | None = typer.Option(None, "--location", help="Only this location."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (what GET /finance/reconciliation answers)."),
) -> None:
    """Compare a period's card payments, refunds and voids in our books with the gateway's, both ways.

    Prints how many matched, each difference and the totals per kind; exits 1 when anything
    differs (or the gateway's list shows a double charge), 0 when the books match.
    """
    from operations.finance_scope import FinanceRefused, asked_period
    from operations.period_reconciliation import reconcile_period

    asked = (option_day(day, "--date", as_json=as_json), option_day(start, "--from", as_json=as_json), option_day(end, "--to", as_json=as_json))
    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        try:
            first, last = asked_period(*asked)
        except FinanceRefused as error:
            refuse(f"{OPTION_OF.get(error.field, error.field)}: {error.reason}", as_json=as_json, code=BAD_INPUT)
        with _gateway(conn, as_json) as gateways:

            async def go() -> Any:
                try:
                    work = reconcile_period(engine_of(conn), gateways, first, last, location_id=location_id, progress=seen.update)
                    return await _with_progress(work, seen)
                finally:
                    await gateways.aclose()

            seen = _Seen()
            try:
                result = run(go())
            except FinanceRefused as error:
                refuse(f"{OPTION_OF.get(error.field, error.field)}: {error.reason}", as_json=as_json, code=BAD_INPUT)
    if as_json:
        print_json(result.to_json())
    else:
        _print(result)
    if not result.reconciled:
        raise typer.Exit(code=1)


@contextmanager
def _gateway(conn: Connection, as_json: bool) -> Iterator[GatewayDirectory]:
    """The configured gateway; with `--demo`, the demo's own sandbox, restored from the state it kept."""
    from stack.gravity_config import gateway_directory

    kept = conn.demo_sandbox_state
    if kept is None:
        yield gateway_directory(conn.settings)
        return
    from demo.kept_gateway import kept_demo_gateway

    if not kept.is_file():
        refuse(f"no demo sandbox state in {kept}: the last demo kept no gateway records; run billing demo again", as_json=as_json)
    with ExitStack() as stack:
        try:
            directory = stack.enter_context(kept_demo_gateway(kept, timeout_s=conn.settings.gravity_timeout_s))
        except ValueError as error:  # a state file cut short or edited by hand
            refuse(f"cannot read the demo sandbox state {kept} ({error}): run billing demo again", as_json=as_json)
        yield directory


class _Seen:
    """How far the lookups are, for the progress line."""

    done = total = 0

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total


async def _with_progress(work: Any, seen: _Seen) -> Any:
    """`work`'s answer; one line on stderr when it takes longer than a moment, so a wait is never silent."""
    task = asyncio.ensure_future(work)
    finished, _ = await asyncio.wait({task}, timeout=PROGRESS_AFTER_S)
    if not finished:
        err_console.print(f"looking {seen.total} movement(s) up at the gateway, one by one ({seen.done} done) ...", style="yellow")
    return await task


def _print(result: Any) -> None:
    span = result.start.isoformat() if result.start == result.end else f"{result.start.isoformat()} to {result.end.isoformat()}"
    where = result.location_id or "every location"
    checked = len(result.movements)
    console.print(f"{span} at {where}: {checked} transaction(s) compared, {checked - len(result.differences)} matched")
    for m in result.differences:
        console.print(f"[red]differs[/red] {m.kind} {m.external_transaction_id}: ours {_usd(m.ours_cents)}, gateway {_usd(m.gateway_cents)} ({m.status})")
    totals = "; ".join(f"{t.kind}s ours {format_usd(t.ours_cents)}, gateway {format_usd(t.gateway_cents)}" for t in result.totals)
    console.print(f"totals: {totals}")
    if result.gateway_listed:
        console.print(f"double charges (from the gateway's own list): {result.double_charges}")
    else:
        console.print("the gateway offers no transaction list: only our movements were looked up")
    console.print("[green]the books match the gateway[/green]" if result.reconciled else "[bold red]the books do not match the gateway[/bold red]")


def _usd(cents: int | None) -> str:
    return "none" if cents is None else format_usd(cents)


def register(app: typer.Typer) -> None:
    """Add `billing reconcile` to the `billing` app."""
    app.command("reconcile")(reconcile)
