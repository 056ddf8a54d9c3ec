"""Finance's commands: `billing history` (the audit trail) and `billing report` (a period's figures).

Both read; neither changes anything. The work is in `operations.history` and `operations.reports`;
this module only prints (rich tables for people, `--json` and `--csv FILE` for spreadsheets).

Imports of the models and the operations sit inside the commands: they load SQLAlchemy's tables
and the Temporal client, which would slow the start of every `billing` command, `--help` included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.operator_stack import connection, console, engine_of, money, operator_errors, option_day, print_json, refuse, run, temporal_client, write_file

SUBJECT_HELP = "What to trace: subscription, invoice or client."


def history(
    subject: str = typer.Argument(..., help=SUBJECT_HELP, metavar="SUBJECT"),
    subject_id: str = typer.Argument(..., help="Its id.", metavar="ID"),
    csv_file: Path | None = typer.Option(None, "--csv", help="Also write the trail to this CSV file.", dir_okay=False),
    as_json: bool = typer.Option(False, "--json", help="Print the trail as JSON."),
) -> None:
    """The audit trail of a subscription, invoice or client: Temporal's history and our books side by side.

    Every cycle, attempt, decline reason, retry, refund and who or what triggered it, in time order,
    from every run of the workflows involved and from payments, refunds, the ledger and the outbox.
    """
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations.history.scope import SUBJECTS, UnknownSubject
    from operations.history.trail import audit_trail

    if subject not in SUBJECTS:
        refuse(f"SUBJECT must be one of {', '.join(SUBJECTS)}, not {subject!r}", as_json=as_json)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)

        async def go() -> Any:
            return await audit_trail(await temporal_client(conn), engine, subject, subject_id)

        try:
            trail = run(go())
        except UnknownSubject as error:
            refuse(str(error), as_json=as_json, error="not_found")
    if csv_file is not None:
        write_file(csv_file, trail.to_csv())
    if as_json:
        print_json(trail.to_json())
        return
    _print_trail(trail)
    if csv_file is not None:
        console.print(f"written to {csv_file}")


def _print_trail(trail: Any) -> None:
    runs = sum(len(w.run_ids) for w in trail.workflows)
    table = Table(title=f"history of {trail.subject} {trail.subject_id}", caption=f"{len(trail.workflows)} workflow(s), {runs} run(s); times in UTC")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("workflow history (Temporal)", overflow="fold", ratio=3)
    table.add_column("books (database)", overflow="fold", ratio=3)
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("triggered by", overflow="fold", ratio=1)
    for entry in trail.entries:
        text = entry.summary
        left, right = (text, "") if entry.source == "temporal" else ("", text)
        table.add_row(entry.at.strftime("%Y-%m-%d %H:%M:%S"), left, right, money(entry.amount_cents) if entry.amount_cents else "", entry.trigger)
    console.print(table)


def report(
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (in each location's time zone)."),
    end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (inclusive)."),
    location_id: str | None = typer.Option(None, "--location", help="Only this location."),
    csv_file: Path | None = typer.Option(None, "--csv", help="Also write the figures to this CSV file (one row per figure).", dir_okay=False),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """A period's figures per location: billed, collected for invoices, received, declined, recovered, refunded, outstanding.

    Declines by reason, recoveries by dunning by attempt number, refunds by kind, deposits taken and
    held; integer cents from the database, days in each location's own time zone.
    """
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations.reports import ReportRefused, finance_report

    # The report has always answered a bad day as a refusal (exit 1), and scripts read that code.
    first, last = option_day(start, "--from", as_json=as_json, code=1), option_day(end, "--to", as_json=as_json, code=1)
    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        try:
            result = finance_report(engine_of(conn), first, last, location_id=location_id)
        except ReportRefused as error:
            refuse(str(error), as_json=as_json)
    if csv_file is not None:
        write_file(csv_file, result.to_csv())
    if as_json:
        print_json(result.to_json())
        return
    _print_report(result)
    if csv_file is not None:
        console.print(f"written to {csv_file}")


def _print_report(result: Any) -> None:
    from operations.reports import COLLECTED_LABEL, DEPOSITS_PAID_LABEL, RECEIVED_LABEL

    columns = [*result.locations, result.totals] if len(result.locations) > 1 else result.locations or [result.totals]
    table = Table(title=f"finance report {result.start} to {result.end}")
    table.add_column("figure", style="bold")
    for figures in columns:
        table.add_column(figures.name, justify="right")

    def line(label: str, pick: Any) -> None:
        cells = []
        for figures in columns:
            tally = pick(figures)
            cells.append(f"{money(tally.cents)} ({tally.count})" if tally is not None and tally.count else "-")
        table.add_row(label, *cells)

    line("billed", lambda f: f.billed)
    line("  of which voided", lambda f: f.voided)
    line(COLLECTED_LABEL, lambda f: f.collected)
    for method in sorted({m for f in columns for m in f.collected_by_method}):
        line(f"  {method.replace('_', ' ')}", lambda f, m=method: f.collected_by_method.get(m))
    line(DEPOSITS_PAID_LABEL, lambda f: f.deposits_paid)
    line(f"{RECEIVED_LABEL} (the two above)", lambda f: f.received)
    line("paid from client credit", lambda f: f.credit_applied)
    line("declined", lambda f: f.declined)
    for why in sorted({r for f in columns for r in f.declined_by_reason}):
        line(f"  {why}", lambda f, r=why: f.declined_by_reason.get(r))
    line("recovered by dunning", lambda f: f.recovered)
    for attempt in sorted({a for f in columns for a in f.recovered_by_attempt}):
        line(f"  on attempt {attempt}", lambda f, a=attempt: f.recovered_by_attempt.get(a))
    line("refunded", lambda f: f.refunded)
    for kind in sorted({k for f in columns for k in f.refunded_by_kind}):
        line(f"  {kind}", lambda f, k=kind: f.refunded_by_kind.get(k))
    line("outstanding (open now)", lambda f: f.outstanding)
    line("client credit created (deposits, overpayments)", lambda f: f.deposits_taken)
    line("deposits held (now)", lambda f: f.deposits_held)
    line("deferred revenue billed", lambda f: f.deferred)
    line("deferred revenue recognized", lambda f: f.recognized)
    line("deferred revenue held (at end)", lambda f: f.deferred_held)
    console.print(table)
    console.print("amounts in USD (count in brackets)")


def register(app: typer.Typer) -> None:
    """Add the finance commands to the `billing` app."""
    app.command("history")(history)
    app.command("report")(report)
