"""`billing dunning`: which subscriptions are past due or suspended now, and why.

From the database (`operations.dunning_view`): no Temporal query syntax, no status values to know.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from cli.errors import BAD_INPUT
from cli.operator_stack import connection, console, engine_of, local_time, money, operator_errors, print_json, refuse


def dunning(
    location_id: str | None = typer.Option(None, "--location", help="Only this location."),
    as_json: bool = typer.Option(False, "--json", help="Print the subscriptions as JSON (cents)."),
) -> None:
    """Subscriptions in dunning (past due, retrying) or suspended now: the last decline, attempts so
    far, the next retry and the card on file."""
    from operations.dunning_view import DunningViewRefused, subscriptions_in_dunning

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        try:
            rows = subscriptions_in_dunning(engine_of(conn), location_id=location_id)
        except DunningViewRefused as error:
            refuse(str(error), as_json=as_json, code=BAD_INPUT)
    if as_json:
        print_json({"subscriptions": rows})
        return
    if not rows:
        console.print("no subscription is past due or suspended" + (f" at {location_id}" if location_id else ""))
        return
    _print_rows(rows)


def _print_rows(rows: list[Any]) -> None:
    table = Table(title="subscriptions in dunning or suspended", caption="times in the clinic's zone; run `billing show SUBSCRIPTION` for one")
    for column in ("subscription", "client", "status", "owed", "attempts", "last decline", "next retry", "card on file", "why"):
        table.add_column(column, overflow="fold", no_wrap=column in ("subscription", "owed"))
    for row in rows:
        decline = f"{row.last_decline_reason} ({row.last_decline_class})" if row.last_decline_class else (row.last_decline_reason or "-")
        retry = _retry(row)
        table.add_row(
            row.subscription_id, row.client_name, row.status.replace("_", " "), money(row.owed_cents), str(row.attempts), decline, retry, row.card, row.why
        )
    console.print(table)
    console.print(f"{len(rows)} subscription(s); amounts in USD")


def _retry(row: Any) -> str:
    if row.next_retry_at is not None:
        return local_time(row.next_retry_at, row.timezone)
    if row.status == "suspended":
        return "none: suspended until a new card or a payment"
    return "none: waits for a new card" if row.last_decline_class == "hard" else "none: waits for a person"


def register(app: typer.Typer) -> None:
    """Add `billing dunning` to the `billing` app."""
    app.command("dunning")(dunning)
