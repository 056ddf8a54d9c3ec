"""`billing clients find TEXT` (a client's id from a name or email) and `billing statement CLIENT_ID`
(what the client was billed and paid in a year, invoice by invoice, each amount once, with totals).

The queries are in `operations.statements`; this module only prints (a rich table in dollars for
people, `--csv` for spreadsheets, `--json` in cents for programs).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from cli.errors import BAD_INPUT
from cli.operator_stack import connection, console, engine_of, money, operator_errors, print_json, refuse


def find(
    text: str = typer.Argument(..., help="Part of the client's name or email (any case)."),
    as_json: bool = typer.Option(False, "--json", help="Print the matches as JSON."),
) -> None:
    """Find clients by name or email and print their ids (for `billing statement` and `billing history client`)."""
    from operations.statements import StatementRefused, find_clients

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        try:
            matches = find_clients(engine_of(conn), text)
        except StatementRefused as error:
            refuse(str(error), as_json=as_json, code=BAD_INPUT)
    if as_json:
        print_json({"clients": matches})
        return
    if not matches:
        console.print(f"no client's name or email contains {text!r}")
        return
    table = Table(title=f"clients matching {text!r}")
    for column in ("client id", "name", "email", "location"):
        table.add_column(column, no_wrap=column == "client id")
    for match in matches:
        table.add_row(match.client_id, match.name, match.email or "", match.location_id)
    console.print(table)


def statement(
    client_id: str = typer.Argument(..., help="The client's id (find it with: billing clients find TEXT).", metavar="CLIENT_ID"),
    year: int | None = typer.Option(None, "--year", help="Calendar year of the invoices (default: this year, in the clinic's time zone)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the statement as CSV (dollars), one row per invoice and a totals row."),
    as_json: bool = typer.Option(False, "--json", help="Print the statement as JSON (cents)."),
) -> None:
    """What a client was billed and paid in a year, invoice by invoice, with totals.

    One line per invoice: the day it was issued, what it was for, its total, the card money paid on
    it, what refunds and voids gave back, the client credit (deposits) applied, and what is still owed.
    """
    from operations.statements import StatementRefused, client_statement

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        try:
            result = client_statement(engine_of(conn), client_id, year)
        except StatementRefused as error:
            refuse(str(error), as_json=as_json, code=BAD_INPUT)
    if as_json:
        print_json(result.to_json())
    elif as_csv:
        typer.echo(result.to_csv(), nl=False)
    else:
        _print_statement(result)


def _print_statement(result: Any) -> None:
    table = Table(title=f"statement of {result.name} ({result.client_id}), {result.year}")
    table.add_column("date", no_wrap=True)
    table.add_column("invoice", no_wrap=True)
    table.add_column("description", overflow="fold")
    table.add_column("status")
    for column in ("total", "paid", "refunded", "credit applied", "balance"):
        table.add_column(column, justify="right", no_wrap=True)
    for line in result.lines:
        amounts = (line.total_cents, line.paid_cents, line.refunded_cents, line.credit_cents, line.balance_cents)
        table.add_row(line.issued_on.isoformat(), line.number, line.description, line.status, *(_cell(c) for c in amounts))
    totals = result.totals()
    table.add_section()
    table.add_row("", "TOTAL", f"{len(result.lines)} invoice(s)", "", *(money(c) for c in totals.values()), style="bold")
    console.print(table)
    console.print("amounts in USD; paid = card money kept for the invoice, before refunds")


def _cell(cents: int) -> str:
    return money(cents) if cents else "-"


def register(app: typer.Typer) -> None:
    """Add `billing clients find` and `billing statement` to the `billing` app."""
    clients = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Find clients.")
    clients.command("find")(find)
    app.add_typer(clients, name="clients")
    app.command("statement")(statement)
