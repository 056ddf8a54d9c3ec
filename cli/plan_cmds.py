"""`billing plan change | retire | versions PLAN_ID`: a plan's terms over its life, from the shell.

They call `operations.plans`, the code behind `PATCH /plans/{id}`, `POST /plans/{id}/retire` and
`GET /plans/{id}/versions`, so a refusal reads as the API's `message`: one red line, exit 1.
Input the command cannot take (a price that is not dollars, no term to change) exits 2.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from cli.amounts import dollars_to_cents
from cli.errors import BAD_INPUT
from cli.free_text import no_card_number
from cli.operator_stack import cli_actor, connection, console, engine_of, local_time, money, operator_errors, print_json, refuse
from foundation.money import MAX_CENTS, MoneyError

JSON_OPTION = typer.Option(False, "--json", help="Print the answer as JSON (cents).")
PLAN_ID = typer.Argument(..., help="The plan's id.", metavar="PLAN_ID")


def _price(price: str | None, price_cents: int | None, as_json: bool) -> int | None:
    """The new price in cents from --price (dollars) or --price-cents; bad input exits 2."""
    if price is not None and price_cents is not None:
        refuse("give --price (dollars) or --price-cents, not both", as_json=as_json, code=BAD_INPUT)
    if price is not None:
        try:
            price_cents = dollars_to_cents(price)
        except MoneyError:
            refuse(f"--price: {price!r} is not a dollar amount like 52.00", as_json=as_json, code=BAD_INPUT)
    if price_cents is not None and not 1 <= price_cents <= MAX_CENTS:
        refuse(f"--price: must be between 1 and {MAX_CENTS} cents", as_json=as_json, code=BAD_INPUT)
    return price_cents


def change(
    plan_id: str = PLAN_ID,
    price: str | None = typer.Option(None, "--price", help="The new fee per interval in dollars, like 52.00."),
    price_cents: int | None = typer.Option(None, "--price-cents", help="The new fee per interval in cents."),
    name: str | None = typer.Option(None, "--name", help="The plan's new name.", callback=no_card_number),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a plan's terms: a new version, for new enrollments at once and for each live
    subscription from its next renewal (a running term keeps its price)."""
    from models.db import session_scope
    from operations import plans as plan_ops
    from operations.audit import Subject, record
    from operations.plan_rules import MAX_PLAN_NAME

    cents = _price(price, price_cents, as_json)
    if name is not None and not 1 <= len(name.strip()) <= MAX_PLAN_NAME:
        refuse(f"--name: 1 to {MAX_PLAN_NAME} characters", as_json=as_json, code=BAD_INPUT)
    if cents is None and name is None:
        refuse("give a term to change: --price, --price-cents or --name", as_json=as_json, code=BAD_INPUT)
    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json), session_scope(engine_of(conn)) as session:
        plan, added = plan_ops.change_terms(session, plan_id, plan_ops.TermsChange(name=None if name is None else name.strip(), price_cents=cents))
        record(session, cli_actor(), "plan.change_terms", Subject("plan", plan.id, plan.location_id))
        answer: dict[str, Any] = {"plan_id": plan.id, "version": plan.version, "version_added": added, "name": plan.name, "price_cents": plan.price_cents}
    if as_json:
        print_json(answer)
        return
    if not added:
        console.print(f"plan {plan_id} already has these terms (version {answer['version']}); nothing changed")
        return
    console.print(
        f"plan {plan_id} is now version {answer['version']}: {answer['name']}, {money(answer['price_cents'])} per interval "
        "(new enrollments at once, live subscriptions from their next renewal)"
    )


def retire(plan_id: str = PLAN_ID, as_json: bool = JSON_OPTION) -> None:
    """Retire a plan: no new enrollments or changes; each live subscription bills on to its term's end
    and then ends, not renewed. Retiring again changes nothing."""
    from models.db import session_scope
    from operations import plans as plan_ops
    from operations.audit import Subject, record

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json), session_scope(engine_of(conn)) as session:
        plan, live = plan_ops.retire(session, plan_id)
        record(session, cli_actor(), "plan.retire", Subject("plan", plan.id, plan.location_id))
        retired_at = plan.retired_at
    if as_json:
        print_json({"plan_id": plan_id, "retired_at": retired_at, "live_subscriptions": live})
        return
    console.print(f"plan {plan_id} retired {local_time(retired_at)}; {live} live subscription(s) end at their term's end")


def versions(plan_id: str = PLAN_ID, as_json: bool = JSON_OPTION) -> None:
    """A plan's versions, oldest first: when each was in effect and how many live subscriptions bill it now."""
    from sqlmodel import Session

    from operations import plans as plan_ops

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json), Session(engine_of(conn)) as session:
        history = plan_ops.version_history(session, plan_id)
    lines: list[dict[str, Any]] = [
        {
            "version": line.row.version,
            "effective_from": line.row.effective_at,
            "effective_until": line.effective_until,
            "name": line.row.name,
            "price_cents": line.row.price_cents,
            "enrollment_fee_cents": line.row.enrollment_fee_cents,
            "term_months": line.row.term_months,
            "auto_renew": line.row.auto_renew,
            "subscriptions": line.subscriptions,
        }
        for line in history.lines
    ]
    if as_json:
        print_json({"plan_id": plan_id, "current_version": history.plan.version, "retired_at": history.plan.retired_at, "versions": lines})
        return
    retired = f", retired {local_time(history.plan.retired_at)}" if history.plan.retired_at else ""
    table = Table(title=f"versions of plan {plan_id} (current: {history.plan.version}{retired})")
    for column in ("version", "from", "until", "name", "price", "enrollment fee", "term", "subscriptions"):
        table.add_column(column, no_wrap=column != "name", justify="right" if column in ("price", "enrollment fee", "subscriptions") else "left")
    for line in lines:
        table.add_row(
            str(line["version"]),
            local_time(line["effective_from"]),
            local_time(line["effective_until"]) or "now",
            str(line["name"]),
            money(line["price_cents"]),
            money(line["enrollment_fee_cents"]),
            f"{line['term_months']} months",
            str(line["subscriptions"]),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `billing plan change | retire | versions` to the `billing` app."""
    plan = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Change, retire and list the versions of a health plan.")
    plan.command("change")(change)
    plan.command("retire")(retire)
    plan.command("versions")(versions)
    app.add_typer(plan, name="plan")
