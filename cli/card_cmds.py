"""`billing cards list | default | remove | expiring`: a client's saved cards, from the shell.

They call `operations.cards`, the code behind the API's card routes, and `operator_errors` prints a
refusal as the API's `message`: one red line, exit 1. A date the command cannot read exits 2. Cards are added through
the API (`POST /clients/{id}/cards`), which checks the Gravity reference; no command takes a card number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from cli.operator_stack import cli_actor, connection, console, engine_of, operator_errors, option_day, print_json

if TYPE_CHECKING:  # the tables load on use, not when `billing --help` starts
    from sqlalchemy import Engine

    from models.clinic import SavedCard

JSON_OPTION = typer.Option(False, "--json", help="Print the answer as JSON.")
CLIENT_ID = typer.Argument(..., help="The client's id (find it with: billing clients find TEXT).", metavar="CLIENT_ID")
CARD_ID = typer.Argument(..., help="The card's id (see: billing cards list CLIENT_ID).", metavar="CARD_ID")


def card_json(card: Any) -> dict[str, Any]:
    """A card as the API's CardOut shows it: no reference, only the masked number."""
    return {
        "id": card.id,
        "client_id": card.client_id,
        "masked_number": card.masked_number,
        "brand": card.brand,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "is_default": card.is_default,
        "disabled": card.disabled,
    }


def _card_table(title: str, cards: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("card id", "card", "brand", "expires", "default", "disabled"):
        table.add_column(column, no_wrap=True)
    for card in cards:
        table.add_row(
            card["id"],
            card["masked_number"],
            card["brand"],
            f"{card['exp_month']:02d}/{card['exp_year']}",
            "yes" if card["is_default"] else "",
            "yes" if card["disabled"] else "",
        )
    return table


def list_cards(client_id: str = CLIENT_ID, as_json: bool = JSON_OPTION) -> None:
    """The client's saved cards, oldest first (none shown when the location does not allow Gravity
    payment for recurring payments)."""
    from operations import cards as card_ops

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        listing = card_ops.list_cards(engine_of(conn), client_id)
    cards = [card_json(card) for card in listing.cards]
    if as_json:
        print_json({"visible": listing.visible, "reason": listing.reason, "cards": cards})
    elif not listing.visible:
        console.print(f"saved cards are hidden: {listing.reason}")
    elif not cards:
        console.print(f"client {client_id} has no saved card")
    else:
        console.print(_card_table(f"cards of client {client_id}", cards))


def set_default(client_id: str = CLIENT_ID, card_id: str = CARD_ID, as_json: bool = JSON_OPTION) -> None:
    """Make the card the client's default: enrollments that name no card charge it."""
    from operations import cards as card_ops

    card = _change(client_id, card_id, as_json, card_ops.set_default, "card.set_default")
    if not as_json:
        console.print(f"card {card.id} ({card.masked_number}) is client {client_id}'s default")


def remove(client_id: str = CLIENT_ID, card_id: str = CARD_ID, as_json: bool = JSON_OPTION) -> None:
    """Disable the card (kept for the books, never charged again); refused while a live subscription charges it."""
    from operations import cards as card_ops

    card = _change(client_id, card_id, as_json, card_ops.remove_card, "card.remove")
    if not as_json:
        console.print(f"card {card.id} ({card.masked_number}) is removed: it is kept for the books and never charged again")


def _change(client_id: str, card_id: str, as_json: bool, change: Callable[[Engine, str, str], SavedCard], action: str) -> SavedCard:
    """Apply a card operation as the operator, record it in the audit trail, and print the card with --json."""
    from operations.audit import Subject, record_now

    conn = connection(temporal=False)
    engine = engine_of(conn)
    with operator_errors(conn, as_json=as_json):
        card = change(engine, client_id, card_id)
        record_now(engine, cli_actor(), action, Subject("card", card.id, card.location_id))
    if as_json:
        print_json(card_json(card))
    return card


def expiring(
    location: str | None = typer.Option(None, "--location", help="Only this location's subscriptions."),
    before: str | None = typer.Option(None, "--before", help="Only next charges due before this date (YYYY-MM-DD)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cards that expire before the next charge of a live subscription they pay for, soonest charge first."""
    from operations import cards as card_ops

    day = option_day(before, "--before", as_json=as_json)
    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        found = card_ops.expiring_cards(engine_of(conn), location_id=location, before=day)
    items: list[dict[str, Any]] = [{"card": card_json(item.card), "subscription_id": item.subscription_id, "next_due_date": item.next_due_on} for item in found]
    if as_json:
        print_json({"cards": items})
        return
    if not items:
        console.print("no saved card expires before its subscription's next charge")
        return
    table = Table(title="cards expiring before their next charge")
    for column in ("next charge", "subscription", "client", "card id", "card", "expires"):
        table.add_column(column, no_wrap=True)
    for item in items:
        card = item["card"]
        expires = f"{card['exp_month']:02d}/{card['exp_year']}"
        table.add_row(item["next_due_date"].isoformat(), item["subscription_id"], card["client_id"], card["id"], card["masked_number"], expires)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `billing cards list | default | remove | expiring` to the `billing` app."""
    cards = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="A client's saved cards, and the cards expiring too soon.")
    cards.command("list")(list_cards)
    cards.command("default")(set_default)
    cards.command("remove")(remove)
    cards.command("expiring")(expiring)
    app.add_typer(cards, name="cards")
