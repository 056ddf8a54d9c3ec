"""Operator commands on subscriptions: enroll, cancel, pause, resume, change card or plan, pay now, show.

They call the very code the HTTP API calls (`operations.enrollment`, `operations.subscriptions`) and
check what the API checks before it (known subscription, the card is the client's and enabled, the
plan is active and offered at the location, the start date is near), so a refused command prints
one red line, exits 1 and changes nothing. Every command takes `--json`.

Imports of the models and the operations sit inside the commands: they load SQLAlchemy's tables
and the Temporal client, which would slow the start of every `billing` command, `--help` included.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import typer
from rich.table import Table
from sqlmodel import Session

from cli.free_text import no_card_number
from cli.operator_stack import (
    Connection,
    answer_or_none,
    cli_actor,
    connection,
    console,
    engine_of,
    local_time,
    money,
    operator_errors,
    option_day,
    print_json,
    refuse,
    run,
    temporal_client,
)
from foundation.statuses import PaymentStatus

QUERY_TIMEOUT_S = 10.0
NO_WORKER_WAIT_S = 3.0  # a worker starting now still answers; none polling means none will soon
SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")

JSON_OPTION = typer.Option(False, "--json", help="Print the answer as JSON.")


# ============================================================================ enroll
def enroll(
    client_id: str = typer.Option(..., "--client", help="The client (pet owner) id."),
    pet_id: str = typer.Option(..., "--pet", help="The pet's id."),
    plan_id: str = typer.Option(..., "--plan", help="The health plan's id."),
    location_id: str | None = typer.Option(None, "--location", help="The location (default: the client's)."),
    start_date: str | None = typer.Option(None, "--start-date", help="First day of the first period, YYYY-MM-DD (default: today)."),
    card_id: str | None = typer.Option(None, "--card", help="Saved card to charge (default: the client's default card)."),
    subscription_id: str | None = typer.Option(
        None,
        "--subscription-id",
        callback=no_card_number,
        help="Your id for the subscription (default: derived, so a retry is the same enrollment).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Enroll a pet in a health plan: writes the subscription and starts its workflow."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.clinic import Client as ClinicClient
    from operations.enrollment import EnrollRequest, enroll as enroll_subscription

    start = _start_date(start_date, as_json)
    if subscription_id is not None and not SUBSCRIPTION_ID.match(subscription_id):
        refuse("--subscription-id: use 1 to 64 letters, digits, _ or -", as_json=as_json)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        if location_id is None:
            with Session(engine) as session:
                person = session.get(ClinicClient, client_id)
            if person is None:
                refuse(f"client_id: unknown client {client_id}", as_json=as_json)
            location_id = person.location_id
        request = EnrollRequest(
            client_id=client_id, pet_id=pet_id, plan_id=plan_id, location_id=location_id, start_date=start, card_id=card_id, subscription_id=subscription_id
        )

        async def go() -> Any:
            client = await temporal_client(conn)
            return await enroll_subscription(client, engine, request, task_queue=conn.task_queue, actor=cli_actor())

        enrollment = run(go())
        row = _subscription_row(conn, enrollment.subscription_id)
    answer = {"subscription_id": enrollment.subscription_id, "workflow_id": enrollment.workflow_id, "created": enrollment.created, "subscription": row}
    if as_json:
        print_json(answer)
        return
    verb = "enrolled" if enrollment.created else "already enrolled (same terms): nothing changed"
    console.print(f"{enrollment.subscription_id} {verb}; workflow {enrollment.workflow_id}")


def _start_date(text: str | None, as_json: bool) -> date:
    today = date.today()
    if text is None:
        return today
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations.enrollment import check_start_date
    from operations.refusals import Refusal

    start = option_day(text, "--start-date", as_json=as_json, code=1)  # as a refused start date exits, below
    try:
        check_start_date(start, today)
    except Refusal as error:
        refuse(f"--start-date: {error.reason}", as_json=as_json)
    return start


def _subscription_row(conn: Connection, subscription_id: str) -> dict[str, Any] | None:
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.subscriptions import Subscription

    with Session(engine_of(conn)) as session:
        row = session.get(Subscription, subscription_id)
        return row.model_dump() if row is not None else None


# ============================================================================ commands (validated Updates)
def _command(subscription_id: str, as_json: bool, call: Callable[[Any, Any], Awaitable[Any]], check: Callable[[Any, Any], None] | None = None) -> None:
    """Check the subscription (and the command's own rules), send the Update, print its answer."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.subscriptions import Subscription
    from operations.subscriptions import Audit, CommandRefused, UnknownSubscription

    conn = connection()
    with operator_errors(conn, as_json=as_json):
        with Session(engine_of(conn)) as session:
            row = session.get(Subscription, subscription_id)
            if row is None:
                refuse(f"unknown subscription {subscription_id}", as_json=as_json, error="not_found")
            if check is not None:
                check(session, row)

        audit = Audit(engine_of(conn), cli_actor())

        async def go() -> Any:
            return await call(await temporal_client(conn), audit)

        try:
            result = run(go())
        except UnknownSubscription as error:
            refuse(str(error), as_json=as_json, error="not_found")
        except CommandRefused as error:
            refuse(f"refused: {re.sub(r'^[A-Za-z]+Error: ', '', str(error))}", as_json=as_json)
    if not result.accepted:
        refuse(f"refused: {result.message}", as_json=as_json)
    if as_json:
        print_json({"subscription_id": subscription_id, "accepted": result.accepted, "status": result.status, "message": result.message})
        return
    console.print(f"{subscription_id}: {result.status}. {result.message}")


def cancel(
    subscription_id: str = typer.Argument(..., help="The subscription id."),
    at_term_end: bool = typer.Option(False, "--at-term-end", help="Cancel when the current term ends instead of now."),
    reason: str = typer.Option("", "--reason", callback=no_card_number, help="Why (kept in the audit trail)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel a subscription now (settled per the plan's policy) or at the end of its term."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations import subscriptions as commands

    if len(reason) > 500:
        refuse("--reason: at most 500 characters", as_json=as_json)
    mode = "term_end" if at_term_end else "now"
    _command(subscription_id, as_json, lambda client, audit: commands.cancel(client, subscription_id, mode=mode, reason=reason, audit=audit))


def pause(subscription_id: str = typer.Argument(..., help="The subscription id."), as_json: bool = JSON_OPTION) -> None:
    """Pause an active subscription: no cycle is billed until it is resumed."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations import subscriptions as commands

    _command(subscription_id, as_json, lambda client, audit: commands.pause(client, subscription_id, audit=audit))


def resume(subscription_id: str = typer.Argument(..., help="The subscription id."), as_json: bool = JSON_OPTION) -> None:
    """Resume a paused subscription: billing continues at the next due date."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations import subscriptions as commands

    _command(subscription_id, as_json, lambda client, audit: commands.resume(client, subscription_id, audit=audit))


def change_card(
    subscription_id: str = typer.Argument(..., help="The subscription id."),
    card_id: str = typer.Argument(..., help="The saved card to charge from now on."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Charge another saved card of the client; open invoices are retried on it at once."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.clinic import SavedCard
    from operations import subscriptions as commands
    from operations.cards import usable_card

    def check(session: Session, row: Any) -> None:
        usable_card(session.get(SavedCard, card_id), card_id, row.client_id, None)

    _command(subscription_id, as_json, lambda client, audit: commands.change_card(client, subscription_id, card_id, audit=audit), check)


def change_plan(
    subscription_id: str = typer.Argument(..., help="The subscription id."),
    plan_id: str = typer.Argument(..., help="The plan to move to."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move the subscription to another plan (prorated per the plan's policy)."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations import subscriptions as commands
    from operations.plan_rules import plan_offered

    def check(session: Session, row: Any) -> None:
        plan_offered(session, plan_id, row.location_id)

    _command(subscription_id, as_json, lambda client, audit: commands.change_plan(client, subscription_id, plan_id, audit=audit), check)


def pay_now(subscription_id: str = typer.Argument(..., help="The subscription id."), as_json: bool = JSON_OPTION) -> None:
    """Charge every open invoice of the subscription now."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from operations import subscriptions as commands

    _command(subscription_id, as_json, lambda client, audit: commands.pay_now(client, subscription_id, audit=audit))


# ============================================================================ show
def show(subscription_id: str = typer.Argument(..., help="The subscription id."), as_json: bool = JSON_OPTION) -> None:
    """A subscription: status, period, next due, balance, open invoices with their attempts, recent history."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.clinic import Location
    from models.subscriptions import Subscription

    conn = connection()
    with operator_errors(conn, as_json=as_json):
        with Session(engine_of(conn)) as session:
            row = session.get(Subscription, subscription_id)
            if row is None:
                refuse(f"unknown subscription {subscription_id}", as_json=as_json, error="not_found")
            location = session.get(Location, row.location_id)
            tz = location.timezone if location else None
            payments = _payment_rows(session, subscription_id)

        view, state = run(_workflow_view(conn, subscription_id))
    if as_json:
        print_json({"subscription": row.model_dump(), "workflow": view, "run": state, "payments": payments})
        return
    _print_subscription(row, view, state, payments, tz)


async def _workflow_view(conn: Any, subscription_id: str) -> tuple[Any, Any]:
    """The workflow's own view (a query) when its run is open and a worker answers; its run's state,
    which Temporal answers with no worker, either way (None for both when there is no workflow)."""
    from operations.subscriptions import UnknownSubscription, describe, run_state, worker_polls

    client = await temporal_client(conn)
    try:
        state = await run_state(client, subscription_id)
    except UnknownSubscription:
        return None, None
    if not state.open:  # a closed run is replayed only by a worker: the books say the rest
        return None, state
    served = await worker_polls(client, state.task_queue)
    wait_s = QUERY_TIMEOUT_S if served else NO_WORKER_WAIT_S
    why = "" if served else f": no worker polls task queue {state.task_queue} (start billing worker)"
    try:
        view = await answer_or_none(
            describe(client, subscription_id),
            wait_s,
            f"waiting up to {wait_s:.0f} s for the workflow to answer (a worker on task queue {state.task_queue} must be running) ...",
            f"the workflow did not answer within {wait_s:.0f} s{why}: showing the database row",
        )
    except UnknownSubscription:
        return None, state
    return view, state


def _payment_rows(session: Session, subscription_id: str) -> list[dict[str, Any]]:
    from sqlmodel import col, select

    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.billing import Payment

    query = select(Payment).where(Payment.subscription_id == subscription_id).order_by(col(Payment.created_at), col(Payment.attempt))
    keep = (
        "id",
        "invoice_id",
        "attempt",
        "method",
        "status",
        "amount_cents",
        "approved_cents",
        "refunded_cents",
        "decline_reason",
        "decline_class",
        "created_at",
    )
    return [{k: getattr(p, k) for k in keep} for p in session.exec(query)]


def _print_subscription(row: Any, view: Any, state: Any, payments: list[dict[str, Any]], tz: str | None) -> None:
    table = Table(title=f"subscription {row.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    status = view.status if view is not None else row.status
    table.add_row("status", status)
    table.add_row("client / pet", f"{row.client_id} / {row.pet_id}")
    table.add_row("plan", view.plan_id if view is not None else row.plan_id)
    table.add_row("card", (view.card_id if view is not None else row.card_id) or "none")
    if view is not None:
        period = f"{view.current_period_start} to {view.current_period_end}" if view.current_period_start else "not billed yet"
        table.add_row("current period", period)
        table.add_row("next due", local_time(view.next_due_at, tz) or "none (finished)")
        table.add_row("balance", money(view.balance_cents))
        table.add_row("cancel at term end", "yes" if view.cancel_at_term_end else "no")
    else:
        table.add_row("next due", local_time(row.next_due_at, tz) or "none")
        table.add_row("workflow", _run_line(state, tz))
    console.print(table)
    if view is not None and view.open_invoices:
        invoices = Table(title="open invoices")
        for column in ("invoice", "cycle", "period start", "balance", "attempts", "waiting for", "next attempt", "last decline"):
            invoices.add_column(column)
        for inv in view.open_invoices:
            decline = f"{inv.last_decline_reason} ({inv.last_decline_class})" if inv.last_decline_reason else ""
            invoices.add_row(
                inv.invoice_id,
                str(inv.cycle_index),
                str(inv.period_start),
                money(inv.balance_cents),
                str(inv.attempts),
                inv.waiting_for,
                local_time(inv.next_attempt_at, tz),
                decline,
            )
        console.print(invoices)
    if view is not None and view.history:
        history = Table(title="recent cycles")
        for column in ("cycle", "period start", "invoice", "outcome", "detail"):
            history.add_column(column)
        for record in view.history:
            history.add_row(str(record.cycle_index), str(record.period_start), record.invoice_id, record.outcome, record.detail)
        console.print(history)
    if payments:
        attempts = Table(title="payment attempts")
        for column in ("when", "invoice", "attempt", "status", "amount", "decline"):
            attempts.add_column(column)
        for p in payments:
            amount = p["approved_cents"] if p["status"] in (PaymentStatus.APPROVED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED) else p["amount_cents"]
            attempts.add_row(local_time(p["created_at"], tz), p["invoice_id"] or "", str(p["attempt"]), p["status"], money(amount), p["decline_reason"] or "")
        console.print(attempts)


def _run_line(state: Any, tz: str | None) -> str:
    if state is None:
        return "none in Temporal (only the database row is shown)"
    if state.open:
        return "running but not answering (only the database row is shown)"
    return f"{state.status} at {local_time(state.closed_at, tz)} (the database row is shown)"


def register(app: typer.Typer) -> None:
    """Add the subscription commands to the `billing` app."""
    app.command("enroll")(enroll)
    app.command("cancel")(cancel)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("change-card")(change_card)
    app.command("change-plan")(change_plan)
    app.command("pay-now")(pay_now)
    app.command("show")(show)
