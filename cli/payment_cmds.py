"""Operator commands that move money at the front desk: terminal payments, deposits, refunds and
invoice cancellation. They call `operations.payments`, the code behind the HTTP API, with the same
checks first; a refused command prints one red line, exits 1, and nothing is written or sent.

Money-moving commands accept `--request-id`: running one again with the same id (after a lost
answer or a crash, say) joins the first payment, deposit or refund instead of making a second one.
Deposits and refunds run as workflows; these commands wait for their result.

Imports of the models and the operations sit inside the commands: they load SQLAlchemy's tables
and the Temporal client, which would slow the start of every `billing` command, `--help` included.
"""

from __future__ import annotations

import uuid
from typing import Any

import typer
from sqlmodel import Session

from cli.amounts import amount_in_cents
from cli.errors import err_console
from cli.free_text import no_card_number
from cli.operator_stack import cli_actor, connection, console, engine_of, money, operator_errors, print_json, refuse, run, temporal_client
from foundation.money import MAX_CENTS, MoneyError
from foundation.statuses import PaymentResult, RefundResultStatus
from stack.gravity_config import gateway_directory

DOLLARS_HELP = "Amount in dollars, like 45.00"
JSON_OPTION = typer.Option(False, "--json", help="Print the answer as JSON.")
REQUEST_ID_OPTION = typer.Option(None, "--request-id", help="Idempotency key: the same id never moves money twice (default: a new one).")


def _amount(value: int | None, as_json: bool, *, required: bool = False, dollars: str | None = None) -> int | None:
    try:
        value = amount_in_cents(dollars, value)
    except MoneyError as error:
        refuse(str(error), as_json=as_json)
    option = "--amount" if dollars is not None else "--amount-cents"
    if value is None:
        if required:
            refuse("--amount (dollars) or --amount-cents is required", as_json=as_json)
        return None
    if not 1 <= value <= MAX_CENTS:
        refuse(f"{option}: must be between 1 and {MAX_CENTS} cents", as_json=as_json)
    return value


# ============================================================================ terminal payment
def terminal_pay(
    invoice_id: str = typer.Argument(..., help="The invoice to pay at the counter."),
    device: str = typer.Option(..., "--device", help="The terminal's device name at Gravity."),
    amount: str | None = typer.Option(None, "--amount", help=DOLLARS_HELP + " (default: the open balance)."),
    amount_cents: int | None = typer.Option(None, "--amount-cents", help="Amount to take in cents (default: the open balance)."),
    save_card: bool = typer.Option(False, "--save-card", help="Keep the card on file for the client."),
    make_default: bool = typer.Option(False, "--make-default", help="With --save-card: make it the client's default card."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the customer has finished at the terminal and print the outcome."),
    request_id: str | None = REQUEST_ID_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send an invoice's amount to a counter terminal (nobody types the amount)."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.billing import Invoice
    from operations.payments import PaymentRefused, TerminalRequest, start_terminal_payment

    cents = _amount(amount_cents, as_json, dollars=amount)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        with Session(engine) as session:
            invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            refuse(f"invoice_id: unknown invoice {invoice_id}", as_json=as_json, error="not_found")
        request = TerminalRequest(
            location_id=invoice.location_id,
            device_name=device,
            invoice_id=invoice_id,
            amount_cents=cents,
            save_card=save_card,
            make_default=make_default,
            request_id=request_id or uuid.uuid4().hex,
        )

        async def go() -> tuple[str, Any]:
            client = await temporal_client(conn)
            gateways = gateway_directory(conn.settings)
            try:
                handle = await start_terminal_payment(client, engine, gateways, request, task_queue=conn.task_queue, actor=cli_actor())
            finally:
                await gateways.aclose()
            if wait and not as_json:
                err_console.print(f"waiting for the customer at {device} (on the sandbox: billing sandbox tap {device}) ...", style="yellow")
            return handle.id, (await handle.result() if wait else None)

        try:
            workflow_id, outcome = run(go())
        except PaymentRefused as error:
            refuse(str(error), as_json=as_json)
    payment_id = workflow_id.removeprefix("terminal-payment:")
    if as_json:
        print_json({"payment_id": payment_id, "workflow_id": workflow_id, "outcome": outcome})
        return
    if outcome is None:
        console.print(f"sent to {device}: payment {payment_id} (workflow {workflow_id}); the customer can pay now")
    else:
        console.print(f"payment {payment_id}: {outcome.status} {money(outcome.approved_cents)}; {outcome.message}".rstrip("; "))
    if outcome is not None and outcome.status not in (PaymentResult.APPROVED, PaymentResult.PARTIAL):
        raise typer.Exit(code=1)


# ============================================================================ deposit
def deposit(
    client_id: str = typer.Argument(..., help="The client the deposit is for."),
    card_id: str | None = typer.Option(None, "--card", help="Charge this saved card of the client."),
    device: str | None = typer.Option(None, "--device", help="Or take it at this counter terminal of the client's location."),
    amount: str | None = typer.Option(None, "--amount", help=DOLLARS_HELP + "."),
    amount_cents: int | None = typer.Option(None, "--amount-cents", help="The deposit amount in cents."),
    request_id: str | None = REQUEST_ID_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Take a deposit (a prepayment kept as client credit) from a saved card or at a terminal."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.clinic import Client as ClinicClient
    from operations.payments import PaymentRefused, take_card_deposit, take_terminal_deposit

    cents = _amount(amount_cents, as_json, required=True, dollars=amount)
    assert cents is not None
    if (card_id is None) == (device is None):
        refuse("give either --card or --device", as_json=as_json)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        with Session(engine) as session:
            person = session.get(ClinicClient, client_id)
        if person is None:
            refuse(f"client_id: unknown client {client_id}", as_json=as_json, error="not_found")
        key = request_id or uuid.uuid4().hex

        async def go() -> Any:
            client = await temporal_client(conn)
            if card_id is not None:
                movement = await take_card_deposit(
                    client,
                    engine,
                    client_id=client_id,
                    card_id=card_id,
                    amount_cents=cents,
                    request_id=key,
                    task_queue=conn.task_queue,
                    actor=cli_actor(),
                )
                return movement.result
            gateways = gateway_directory(conn.settings)
            try:
                assert device is not None
                return await take_terminal_deposit(
                    client,
                    engine,
                    gateways,
                    client_id=client_id,
                    location_id=person.location_id,
                    device_name=device,
                    amount_cents=cents,
                    task_queue=conn.task_queue,
                    request_id=key,
                    actor=cli_actor(),
                )
            finally:
                await gateways.aclose()

        try:
            outcome = run(go())
        except PaymentRefused as error:
            refuse(str(error), as_json=as_json)
    if device is not None:
        payment_id = outcome.id.removeprefix("terminal-payment:")
        if as_json:
            print_json({"payment_id": payment_id, "workflow_id": outcome.id})
        else:
            console.print(f"sent to {device}: deposit payment {payment_id} (workflow {outcome.id})")
        return
    answer = {
        "payment_id": outcome.payment_id,
        "status": outcome.status,
        "approved_cents": outcome.approved_cents,
        "deposit_id": outcome.deposit_id,
        "message": outcome.message,
    }
    if as_json:
        print_json(answer)
    else:
        held = f"; deposit {outcome.deposit_id} held as client credit" if outcome.deposit_id else ""
        console.print(f"payment {outcome.payment_id}: {outcome.status} {money(outcome.approved_cents)}{held}. {outcome.message}".rstrip(". "))
    if outcome.status != PaymentResult.APPROVED:
        raise typer.Exit(code=1)


# ============================================================================ refund
def refund(
    payment_id: str = typer.Argument(..., help="The card payment to refund."),
    amount: str | None = typer.Option(None, "--amount", help=DOLLARS_HELP + " (default: everything still refundable)."),
    amount_cents: int | None = typer.Option(None, "--amount-cents", help="Amount to give back in cents (default: everything still refundable)."),
    reason: str = typer.Option("", "--reason", callback=no_card_number, help="Why (kept with the refund)."),
    request_id: str | None = REQUEST_ID_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Refund all or part of a card payment to the card it came from (a void while Gravity allows one)."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.billing import Payment
    from operations.payments import PaymentRefused, refund_payment

    cents = _amount(amount_cents, as_json, dollars=amount)
    if len(reason) > 500:
        refuse("--reason: at most 500 characters", as_json=as_json)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        with Session(engine) as session:
            if session.get(Payment, payment_id) is None:
                refuse(f"payment_id: unknown payment {payment_id}", as_json=as_json, error="not_found")

        async def go() -> Any:
            client = await temporal_client(conn)
            movement = await refund_payment(
                client,
                engine,
                payment_id=payment_id,
                amount_cents=cents,
                request_id=request_id or uuid.uuid4().hex,
                reason=reason,
                task_queue=conn.task_queue,
                actor=cli_actor(),
            )
            return movement.result

        try:
            outcome = run(go())
        except PaymentRefused as error:
            refuse(str(error), as_json=as_json)
    answer = {
        "payment_id": outcome.payment_id,
        "status": outcome.status,
        "kind": outcome.kind,
        "amount_cents": outcome.amount_cents,
        "refund_id": outcome.refund_id,
        "message": outcome.message,
    }
    if as_json:
        print_json(answer)
    elif outcome.status != RefundResultStatus.DONE:
        console.print(f"payment {payment_id}: nothing was given back; {outcome.message}")
    else:
        console.print(f"payment {payment_id}: {outcome.kind} of {money(outcome.amount_cents)} done (refund {outcome.refund_id})")
    if outcome.status != RefundResultStatus.DONE:
        raise typer.Exit(code=1)


# ============================================================================ invoice cancellation
def cancel_invoice(
    invoice_id: str = typer.Argument(..., help="The invoice to cancel."),
    reason: str = typer.Option("", "--reason", callback=no_card_number, help="Why (kept in the audit trail)."),
    wait: bool = typer.Option(False, "--wait", help="Wait until every payment is given back and the invoice is void."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel an invoice: give back every payment and credit on it, then void it (a saga, once per invoice)."""
    # On use, not at start: loads SQLAlchemy's tables and the Temporal client.
    from models.billing import Invoice
    from operations.payments import PaymentRefused, cancel_invoice as start_cancellation

    if len(reason) > 500:
        refuse("--reason: at most 500 characters", as_json=as_json)
    conn = connection()
    with operator_errors(conn, as_json=as_json):
        engine = engine_of(conn)
        with Session(engine) as session:
            if session.get(Invoice, invoice_id) is None:
                refuse(f"invoice_id: unknown invoice {invoice_id}", as_json=as_json, error="not_found")

        async def go() -> tuple[str, Any]:
            client = await temporal_client(conn)
            handle = await start_cancellation(client, engine, invoice_id=invoice_id, reason=reason, task_queue=conn.task_queue, actor=cli_actor())
            return handle.id, (await handle.result() if wait else None)

        try:
            workflow_id, outcome = run(go())
        except PaymentRefused as error:
            refuse(str(error), as_json=as_json)
    if as_json:
        print_json({"invoice_id": invoice_id, "workflow_id": workflow_id, "outcome": outcome})
        return
    if outcome is None:
        console.print(f"cancelling invoice {invoice_id}: workflow {workflow_id}")
        return
    given = sum(c.amount_cents for c in outcome.compensated)
    console.print(f"invoice {invoice_id} is {outcome.status}: {money(given)} given back to cards, {money(outcome.credit_returned_cents)} returned to credit")


def register(app: typer.Typer) -> None:
    """Add the front-desk money commands to the `billing` app."""
    app.command("terminal-pay")(terminal_pay)
    app.command("deposit")(deposit)
    app.command("refund")(refund)
    app.command("cancel-invoice")(cancel_invoice)
