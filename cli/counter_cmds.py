"""Front-desk commands around the terminal: create a counter invoice, and list a location's terminals.

They call what the HTTP API calls (`operations.payments`) and read the terminals the location
registered beside the devices Gravity reports, so a person can pick the device `terminal-pay` sends to.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from sqlmodel import Session, select

from cli.amounts import dollars_to_cents
from cli.free_text import no_card_number
from cli.operator_stack import cli_actor, connection, console, engine_of, money, operator_errors, print_json, refuse, run
from foundation.money import MoneyError
from stack.gravity_config import gateway_directory

JSON_OPTION = typer.Option(False, "--json", help="Print the answer as JSON.")


def parse_line(text: str, as_json: bool) -> tuple[str, int]:
    """ "Sick visit exam=85.00" -> ("Sick visit exam", 8500): the amount in dollars after the last '='."""
    description, sep, amount = text.rpartition("=")
    if not sep or not description.strip():
        refuse(f'--line: {text!r} is not DESCRIPTION=AMOUNT, like "Sick visit exam=85.00"', as_json=as_json)
    try:
        return description.strip(), dollars_to_cents(amount)
    except MoneyError:
        refuse(f"--line: {amount!r} is not a dollar amount like 85.00", as_json=as_json)


def counter_invoice(
    client_id: str = typer.Argument(..., help="The client the invoice is for."),
    lines: list[str] = typer.Option(
        ..., "--line", callback=no_card_number, help='A line as DESCRIPTION=DOLLARS, like "Sick visit exam=85.00"; repeat for more.'
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a front-desk invoice for a client (pay it with `billing terminal-pay INVOICE --device NAME`)."""
    # On use, not at start: loads SQLAlchemy's tables.
    from models.clinic import Client as ClinicClient
    from operations.payments import CounterLine, PaymentRefused, create_counter_invoice_for

    parsed = [parse_line(text, as_json) for text in lines]
    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        with Session(engine) as session:
            person = session.get(ClinicClient, client_id)
        if person is None:
            refuse(f"client_id: unknown client {client_id}", as_json=as_json, error="not_found")
        try:
            invoice_id = create_counter_invoice_for(
                engine,
                client_id=client_id,
                location_id=person.location_id,
                lines=[CounterLine(d, cents) for d, cents in parsed],
                actor=cli_actor(),
            )
        except PaymentRefused as error:
            refuse(str(error), as_json=as_json)
    total = sum(cents for _, cents in parsed)
    if as_json:
        print_json({"invoice_id": invoice_id, "client_id": client_id, "location_id": person.location_id, "total_cents": total})
        return
    console.print(f"invoice {invoice_id} for {client_id}: {money(total)} ({len(parsed)} line(s)) at location {person.location_id}")


def terminals(location_id: str = typer.Argument(..., help="The location."), as_json: bool = JSON_OPTION) -> None:
    """A location's counter terminals: those it registered and what Gravity says of each device (online, busy)."""
    # On use, not at start: loads SQLAlchemy's tables.
    from models.clinic import Location, Terminal

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        with Session(engine_of(conn)) as session:
            location = session.get(Location, location_id)
            if location is None:
                refuse(f"location_id: unknown location {location_id}", as_json=as_json, error="not_found")
            registered = {t.device_name: t.label for t in session.exec(select(Terminal).where(Terminal.location_id == location_id))}
            oid = location.gravity_oid
        devices, problem = run(_gravity_devices(conn, oid))
    rows = _rows(registered, devices)
    if as_json:
        print_json({"location_id": location_id, "gravity_oid": oid, "terminals": rows, "gravity_error": problem})
        return
    table = Table(title=f"terminals of {location_id} (Gravity OID {oid})")
    for column in ("device", "label", "registered", "at Gravity", "online", "busy"):
        table.add_column(column)
    for row in rows:
        yes = {True: "yes", False: "no", None: "?"}
        table.add_row(row["device_name"], row["label"], yes[row["registered"]], yes[row["at_gravity"]], yes[row["online"]], yes[row["busy"]])
    console.print(table)
    if problem:
        console.print(f"Gravity did not answer: {problem}")


async def _gravity_devices(conn: Any, oid: str) -> tuple[dict[str, Any], str | None]:
    from gravity.errors import GravityError

    gateways = gateway_directory(conn.settings)
    try:
        return {d.name: d for d in await gateways.for_oid(oid).list_devices()}, None
    except GravityError as error:
        return {}, error.message
    finally:
        await gateways.aclose()


def _rows(registered: dict[str, str], devices: dict[str, Any]) -> list[dict[str, Any]]:
    names = sorted(set(registered) | set(devices))
    return [
        {
            "device_name": name,
            "label": registered.get(name, ""),
            "registered": name in registered,
            "at_gravity": name in devices,
            "online": devices[name].online if name in devices else None,
            "busy": devices[name].busy if name in devices else None,
        }
        for name in names
    ]


def register(app: typer.Typer) -> None:
    """Add the counter commands to the `billing` app."""
    app.command("counter-invoice")(counter_invoice)
    app.command("terminals")(terminals)
