"""Front-desk money operations, as the HTTP API and the CLI call them.

Each operation validates at the edge first and raises `PaymentRefused` (with a clear reason) before
anything is written, sent or started, so a refused command leaves no rows and no half-run workflow.
Everything that moves money is keyed and runs as a workflow whose id derives from the key: a caller
that retries with the same `request_id` (even after its first request died half-way) joins the same
payment, refund or deposit, never a second one. The request waits a bounded time for the result;
the movement itself never depends on the request staying alive.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.terminal import gateway_result, request_refusal
from books.credit import credit_of
from books.deposits import DepositRefused, card_deposit_refusal, deposit_outcome, refundable_deposit
from books.invoices import LineSpec, create_counter_invoice
from books.refunds import deposit_refund_refusal, refundable_cents
from foundation.contracts import (
    CardDepositRequest,
    DepositOutcome,
    InvoiceCancellationInput,
    RefundRequest,
    RefundResult,
    TerminalPaymentInput,
    TerminalTiming,
)
from foundation.ids import (
    attempt_payment_id,
    cancellation_workflow_id,
    card_deposit_key,
    card_deposit_workflow_id,
    customer_refund_key,
    deposit_refund_key,
    movement_key,
    new_id,
    refund_attempt_key,
    refund_request_id,
    refund_workflow_id,
    terminal_attempt_key,
    terminal_workflow_id,
    void_attempt_key,
)
from foundation.scopes import Actor
from foundation.statuses import InvoiceStatus, PaymentResult, PaymentStatus, RefundResultStatus
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from gravity.postback import parse_postback, verify
from models.billing import Deposit, Invoice, Payment
from models.db import session_scope
from models.ledger import Account
from operations.audit import Subject, record, record_now
from workflows.card_deposit import CardDepositWorkflow
from workflows.invoice_cancellation import InvoiceCancellationWorkflow
from workflows.refund import RefundWorkflow
from workflows.terminal_payment import TerminalPaymentWorkflow


class PaymentRefused(ValueError):
    """The operation cannot be done; the message says why. Nothing was written, sent or started."""


class PaymentConflict(PaymentRefused):
    """What the movement needed was taken after the request was checked (another refund got there
    first): nothing was moved; answer 409."""


class PostbackRejected(ValueError):
    """A postback whose signature does not verify (answer 401) or whose body is unreadable (400)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------- money movements
R = TypeVar("R")


@dataclass(frozen=True)
class Movement(Generic[R]):
    """A money movement's workflow and, when it ended within the wait, its result (None: still
    running; poll it)."""

    workflow_id: str
    result: R | None = None


async def _move(client: Client, run: Callable[[Any, Any], Awaitable[R]], arg: Any, workflow_id: str, task_queue: str, wait_s: float | None) -> Movement[R]:
    """Start the movement's workflow, or join the one this id already names (running, or ended with a
    result), and wait up to `wait_s` for its result. A run that failed or was terminated is started
    again under the same id: its steps find their own rows, so resuming is safe."""
    try:
        handle = await client.start_workflow(
            run,
            arg,
            id=workflow_id,
            task_queue=task_queue,  # type: ignore[arg-type]
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(run, workflow_id)  # type: ignore[arg-type]
    try:
        result = await (handle.result() if wait_s is None else asyncio.wait_for(handle.result(), wait_s))
    except TimeoutError:
        return Movement(workflow_id)
    return Movement(workflow_id, result)


# ----------------------------------------------------------------- counter invoices
@dataclass(frozen=True)
class CounterLine:
    description: str
    amount_cents: int
    kind: str = "service"


def create_counter_invoice_for(
    engine: Engine,
    *,
    client_id: str,
    location_id: str,
    lines: list[CounterLine],
    invoice_id: str | None = None,
    actor: Actor | None = None,
    at: datetime | None = None,
) -> str:
    """A front-desk invoice (services, products) the client pays at the counter; returns its id.

    `at` dates its rows (the demo's visit on a day of its simulated year); None: the database's now()."""
    if not lines:
        raise PaymentRefused("an invoice needs at least one line")
    if any(line.amount_cents <= 0 for line in lines):
        raise PaymentRefused("every line amount must be greater than zero")
    from models.clinic import Client as ClinicClient

    invoice_id = invoice_id or new_id("inv")
    with session_scope(engine, at=at) as session:
        if session.get(Invoice, invoice_id) is not None:
            return invoice_id
        client = session.get(ClinicClient, client_id)
        if client is None or client.location_id != location_id:
            raise PaymentRefused(f"unknown client {client_id} at location {location_id}")
        create_counter_invoice(
            session,
            invoice_id=invoice_id,
            client_id=client_id,
            location_id=location_id,
            lines=[LineSpec(line.kind, line.description, line.amount_cents, Account.FEE_REVENUE) for line in lines],
        )
        record(session, actor, "invoice.create", Subject("invoice", invoice_id, location_id))
    return invoice_id


# ----------------------------------------------------------------- terminal payments and deposits
@dataclass(frozen=True)
class TerminalRequest:
    location_id: str
    device_name: str
    invoice_id: str | None = None
    amount_cents: int | None = None  # None: the open balance
    save_card: bool = False
    make_default: bool = False
    purpose: str = "invoice"  # invoice | deposit
    client_id: str | None = None  # for deposits
    request_id: str | None = None  # the caller's idempotency key


def terminal_attempt(request_id: str) -> tuple[str, str]:
    """(attempt key, payment id) of a terminal request: the workflow id derives from the payment id."""
    attempt_key = terminal_attempt_key(request_id)
    return attempt_key, attempt_payment_id(attempt_key)


async def start_terminal_payment(
    client: Client,
    engine: Engine,
    gateways: GatewayDirectory,
    request: TerminalRequest,
    *,
    task_queue: str,
    timing: TerminalTiming | None = None,
    actor: Actor | None = None,
) -> WorkflowHandle:
    """Validate (database and the device's state at Gravity), then start the payment's workflow
    (recording `actor` as it starts)."""
    request_key = movement_key(actor, request.request_id) if request.request_id else None
    attempt_key, payment_id = terminal_attempt(request_key or uuid.uuid4().hex)
    input = TerminalPaymentInput(
        payment_id=payment_id,
        attempt_key=attempt_key,
        location_id=request.location_id,
        device_name=request.device_name,
        purpose=request.purpose,
        invoice_id=request.invoice_id,
        client_id=request.client_id,
        amount_cents=request.amount_cents,
        save_card=request.save_card,
        make_default=request.make_default,
        timing=timing or TerminalTiming(),
    )
    workflow_id = terminal_workflow_id(payment_id)
    with Session(engine) as session:
        already = session.get(Payment, payment_id)
        if already is None:
            reason, location, _ = request_refusal(session, input)
            if reason is not None:
                raise PaymentRefused(reason)
            assert location is not None
            oid = location.gravity_oid
        else:
            oid = ""
    if already is not None or await _workflow_exists(client, workflow_id):
        return client.get_workflow_handle(workflow_id)  # a repeat of the same request: the same payment
    await _check_device(gateways, oid, request.device_name)
    action = "deposit.terminal" if request.purpose == "deposit" else "payment.terminal"
    subject = Subject("payment", payment_id, request.location_id)
    await asyncio.to_thread(record_now, engine, actor, action, subject, request_key=request_key, workflow_id=workflow_id)
    return await client.start_workflow(
        TerminalPaymentWorkflow.run,
        input,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def _workflow_exists(client: Client, workflow_id: str) -> bool:
    """True once the payment's workflow was started (its row may not be written yet)."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _check_device(gateways: GatewayDirectory, oid: str, device_name: str) -> None:
    try:
        devices = await gateways.for_oid(oid).list_devices()
    except GravityError as error:
        raise PaymentRefused(f"cannot reach the terminals of this location: {error.message}") from None
    device = next((d for d in devices if d.name == device_name), None)
    if device is None:
        raise PaymentRefused(f"unknown device {device_name}")
    if not device.online:
        raise PaymentRefused(f"device {device_name} is offline")
    if device.busy:
        raise PaymentRefused(f"device {device_name} is busy with another transaction")


async def take_terminal_deposit(
    client: Client,
    engine: Engine,
    gateways: GatewayDirectory,
    *,
    client_id: str,
    location_id: str,
    device_name: str,
    amount_cents: int,
    task_queue: str,
    request_id: str | None = None,
    timing: TerminalTiming | None = None,
    actor: Actor | None = None,
) -> WorkflowHandle:
    """A deposit taken at the terminal: the terminal workflow with purpose "deposit"."""
    return await start_terminal_payment(
        client,
        engine,
        gateways,
        TerminalRequest(
            location_id=location_id, device_name=device_name, amount_cents=amount_cents, purpose="deposit", client_id=client_id, request_id=request_id
        ),
        task_queue=task_queue,
        timing=timing,
        actor=actor,
    )


async def take_card_deposit(
    client: Client,
    engine: Engine,
    *,
    client_id: str,
    card_id: str,
    amount_cents: int,
    request_id: str,
    task_queue: str,
    wait_s: float | None = None,
    actor: Actor | None = None,
) -> Movement[DepositOutcome]:
    """A deposit charged to a saved card, exactly once per `request_id`; becomes client credit.

    Checked here, then charged by its workflow; `wait_s` bounds the wait for its result (None: until
    it ends). A repeat of the request resumes the same payment rather than checking again."""
    request_id = movement_key(actor, request_id)
    payment_id = attempt_payment_id(card_deposit_key(client_id, request_id))
    location_id = await asyncio.to_thread(_check_card_deposit, engine, payment_id, client_id, card_id, amount_cents)
    request = CardDepositRequest(client_id=client_id, card_id=card_id, amount_cents=amount_cents, request_key=request_id)
    workflow_id = card_deposit_workflow_id(payment_id)
    subject = Subject("payment", payment_id, location_id)
    await asyncio.to_thread(record_now, engine, actor, "deposit.card", subject, request_key=request_id, workflow_id=workflow_id)
    movement = await _move(client, CardDepositWorkflow.run, request, workflow_id, task_queue, wait_s)
    if movement.result is not None and movement.result.status == PaymentResult.REFUSED:
        raise PaymentConflict(movement.result.message)
    return movement


def _check_card_deposit(engine: Engine, payment_id: str, client_id: str, card_id: str, amount_cents: int) -> str | None:
    """Refuse what cannot be charged; the client's location (None: unknown client, refused anyway)."""
    from models.clinic import Client as ClinicClient

    with Session(engine) as session:
        owner = session.get(ClinicClient, client_id)
        location_id = owner.location_id if owner is not None else None
        if session.get(Payment, payment_id) is not None:
            return location_id  # a repeat: the payment is written, its workflow finishes it
        refusal = card_deposit_refusal(session, client_id=client_id, card_id=card_id, amount_cents=amount_cents)
    if refusal is not None:
        raise PaymentRefused(refusal)
    return location_id


def card_deposit_payment_id(client_id: str, request_id: str, actor: Actor | None = None) -> str:
    """The payment `actor`'s card deposit request makes (known before its workflow writes the row)."""
    return attempt_payment_id(card_deposit_key(client_id, movement_key(actor, request_id)))


async def refund_deposit(
    client: Client,
    engine: Engine,
    *,
    deposit_id: str,
    request_id: str,
    task_queue: str,
    wait_s: float | None = None,
    actor: Actor | None = None,
) -> Movement[RefundResult]:
    """Give back what is left of an unused deposit to the card that paid it (a workflow, once per `request_id`)."""
    request_id = movement_key(actor, request_id)
    key = deposit_refund_key(deposit_id, request_id)
    await asyncio.to_thread(_check_deposit_refund, engine, deposit_id, key)
    request = RefundRequest(request_key=request_id, deposit_id=deposit_id)
    workflow_id = refund_workflow_id(refund_request_id(key))
    await asyncio.to_thread(_record_located, engine, actor, "deposit.refund", Deposit, deposit_id, request_id, workflow_id)
    return _settled(await _move(client, RefundWorkflow.run, request, workflow_id, task_queue, wait_s))


def _record_located(engine: Engine, actor: Actor | None, action: str, model: type, subject_id: str, request_key: str | None, workflow_id: str) -> None:
    """Record a movement on a stored thing (a deposit, a payment, an invoice) at the thing's location."""
    if actor is None:
        return
    with session_scope(engine) as session:
        thing = session.get(model, subject_id)
        subject = Subject(model.__tablename__, subject_id, getattr(thing, "location_id", None))  # type: ignore[attr-defined]
        record(session, actor, action, subject, request_key=request_key, workflow_id=workflow_id)


async def cancel_terminal_payment(client: Client, payment_id: str, *, engine: Engine | None = None, actor: Actor | None = None):  # type: ignore[no-untyped-def]
    """Staff cancel (validated by the workflow: only while the customer has not finished); an
    accepted cancel is recorded with `actor` when `engine` is given."""
    workflow_id = terminal_workflow_id(payment_id)
    result = await client.get_workflow_handle(workflow_id).execute_update(TerminalPaymentWorkflow.cancel)
    if engine is not None and actor is not None and result.accepted:
        await asyncio.to_thread(_record_located, engine, actor, "payment.terminal_cancel", Payment, payment_id, None, workflow_id)
    return result


def _check_deposit_refund(engine: Engine, deposit_id: str, key: str) -> None:
    with Session(engine) as session:
        if _has_refund(session, key):
            return  # a repeat: its workflow finishes the refund it started
        try:
            refundable_deposit(session, deposit_id)
        except DepositRefused as error:
            raise PaymentRefused(str(error)) from None


# ----------------------------------------------------------------- refunds and voids
async def refund_payment(
    client: Client,
    engine: Engine,
    *,
    payment_id: str,
    amount_cents: int | None = None,
    request_id: str,
    reason: str = "",
    task_queue: str,
    wait_s: float | None = None,
    actor: Actor | None = None,
) -> Movement[RefundResult]:
    """Refund all (None) or part of a payment to the card it came from; void it instead while
    Gravity still allows that (whole amount, unsettled). Never more than what remains refundable.

    Checked here, then given back by its workflow (keyed by `request_id`, so a repeat resumes the
    same refund); `wait_s` bounds the wait for its result (None: until it ends). A refund that lost
    a race for the money raises `PaymentConflict`."""
    request_id = movement_key(actor, request_id)
    key = customer_refund_key(payment_id, request_id)
    await asyncio.to_thread(_check_refund, engine, payment_id, amount_cents, key)
    request = RefundRequest(request_key=request_id, payment_id=payment_id, amount_cents=amount_cents, reason=reason)
    workflow_id = refund_workflow_id(refund_request_id(key))
    await asyncio.to_thread(_record_located, engine, actor, "payment.refund", Payment, payment_id, request_id, workflow_id)
    return _settled(await _move(client, RefundWorkflow.run, request, workflow_id, task_queue, wait_s))


def _check_refund(engine: Engine, payment_id: str, amount_cents: int | None, key: str) -> None:
    with Session(engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise PaymentRefused(f"unknown payment {payment_id}")
        if payment.method == "credit":
            raise PaymentRefused(f"payment {payment_id} was paid with client credit, not a card")
        if amount_cents is not None and amount_cents <= 0:
            raise PaymentRefused("the refund amount must be greater than zero")
        if _has_refund(session, key):
            return  # a repeat: its workflow finishes the refund it started
        available = refundable_cents(payment)
        refusal = deposit_refund_refusal(payment, credit_of(session, payment), amount_cents)
    if refusal is not None:
        raise PaymentRefused(refusal)
    if available == 0:
        raise PaymentRefused(f"payment {payment_id} has nothing left to refund")
    if amount_cents is not None and amount_cents > available:
        raise PaymentRefused(f"a refund of {amount_cents} cents exceeds the {available} cents still refundable on payment {payment_id}")


def refund_id_of(*, payment_id: str | None = None, deposit_id: str | None = None, request_id: str, actor: Actor | None = None) -> str:
    """The public id of the refund movement `actor`'s request makes (its workflow's and its poll URL's)."""
    request_id = movement_key(actor, request_id)
    if payment_id is not None:
        return refund_request_id(customer_refund_key(payment_id, request_id))
    assert deposit_id is not None
    return refund_request_id(deposit_refund_key(deposit_id, request_id))


def _has_refund(session: Session, key: str) -> bool:
    """True once a refund movement under this business key wrote its void or refund row."""
    from models.billing import Refund

    keys = (void_attempt_key(key), refund_attempt_key(key))
    return session.exec(select(Refund).where(Refund.attempt_key.in_(keys))).first() is not None  # type: ignore[attr-defined]


def _settled(movement: Movement[RefundResult]) -> Movement[RefundResult]:
    """The movement, unless its workflow found the money already taken (a race lost since the check)."""
    if movement.result is not None and movement.result.status == RefundResultStatus.REFUSED:
        raise PaymentConflict(movement.result.message)
    return movement


@dataclass(frozen=True)
class RefundView:
    """Where a refund movement is: running, or how it ended (`result`)."""

    refund_request_id: str
    status: str  # running | done | refused | failed
    result: RefundResult | None = None
    message: str = ""


async def refund_status(client: Client, refund_request_id: str) -> RefundView | None:
    """A refund movement read from its workflow (None: no such movement)."""
    handle = client.get_workflow_handle(refund_workflow_id(refund_request_id), result_type=RefundResult)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        return RefundView(refund_request_id, "running")
    if description.status != WorkflowExecutionStatus.COMPLETED:
        name = description.status.name.lower() if description.status is not None else "unknown"
        return RefundView(refund_request_id, RefundResultStatus.FAILED, message=f"the refund's workflow ended {name}; ask again with the same key to resume it")
    result = await handle.result()
    return RefundView(refund_request_id, result.status, result, result.message)


@dataclass(frozen=True)
class CardDepositView:
    """Where a card deposit is: running, or how it ended."""

    payment_id: str
    status: str  # running | approved | partial | declined | refused | failed
    outcome: DepositOutcome | None = None


async def card_deposit_status(client: Client, engine: Engine, payment_id: str) -> CardDepositView | None:
    """A card deposit read from the books once it has an answer, else from its workflow (None: unknown)."""
    with Session(engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is not None and (payment.purpose != "deposit" or payment.method != "card_on_file"):
            return None
        if payment is not None and payment.status != PaymentStatus.PENDING:
            outcome = deposit_outcome(session, payment)
            return CardDepositView(payment_id, outcome.status, outcome)
    handle = client.get_workflow_handle(card_deposit_workflow_id(payment_id), result_type=DepositOutcome)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return CardDepositView(payment_id, "running") if payment is not None else None
    if description.status == WorkflowExecutionStatus.COMPLETED:
        outcome = await handle.result()
        return CardDepositView(payment_id, outcome.status, outcome)
    return CardDepositView(payment_id, "running")


# ----------------------------------------------------------------- invoice cancellation
async def cancel_invoice(
    client: Client, engine: Engine, *, invoice_id: str, reason: str, task_queue: str, actor: Actor | None = None, request_key: str | None = None
) -> WorkflowHandle:
    """Start (once) the saga that gives back every payment on the invoice and voids it (recording `actor`)."""
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            raise PaymentRefused(f"unknown invoice {invoice_id}")
        if invoice.status == InvoiceStatus.VOID:
            raise PaymentRefused(f"invoice {invoice_id} is already void")
        running = session.exec(
            select(Payment).where(Payment.invoice_id == invoice_id, Payment.method == "terminal", Payment.status == PaymentStatus.PENDING)
        ).first()
        if running is not None:
            raise PaymentRefused(f"a terminal payment ({running.id}) is in progress on invoice {invoice_id}; finish or cancel it first")
    workflow_id = cancellation_workflow_id(invoice_id)
    request_key = movement_key(actor, request_key) if request_key else None
    await asyncio.to_thread(_record_located, engine, actor, "invoice.cancel", Invoice, invoice_id, request_key, workflow_id)
    return await client.start_workflow(
        InvoiceCancellationWorkflow.run,
        InvoiceCancellationInput(invoice_id, reason),
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


# ----------------------------------------------------------------- postbacks
@dataclass(frozen=True)
class PostbackReceipt:
    status: str  # routed | ignored
    external_transaction_id: str
    workflow_id: str | None = None
    detail: str = ""


async def receive_postback(client: Client, engine: Engine, *, body: bytes, signature: str | None, secret: str) -> PostbackReceipt:
    """Verify a Gravity postback (HMAC over the raw bytes) and signal the payment's workflow.

    A bad signature is refused before anything in the body is read. Duplicates and postbacks for
    finished workflows are harmless: the workflow keeps the first result, and a closed one is skipped
    (its payment's result was already booked through polling).
    """
    if not verify(body, signature, secret):
        raise PostbackRejected("postback signature does not verify", 401)
    try:
        result = parse_postback(body)
    except ValueError as error:
        raise PostbackRejected(str(error), 400) from None
    ext = result.external_transaction_id
    payment_id = await asyncio.to_thread(_payment_for, engine, ext)
    if payment_id is None:
        return PostbackReceipt("ignored", ext, detail="no payment with this externalTransactionId")
    workflow_id = terminal_workflow_id(payment_id)
    try:
        await client.get_workflow_handle(workflow_id).signal(TerminalPaymentWorkflow.postback, gateway_result(result))
    except RPCError as error:
        return PostbackReceipt("ignored", ext, workflow_id, detail=f"workflow not running: {error.message}")
    return PostbackReceipt("routed", ext, workflow_id)


def _payment_for(engine: Engine, external_transaction_id: str) -> str | None:
    with Session(engine) as session:
        payment = session.exec(select(Payment).where(Payment.external_transaction_id == external_transaction_id)).first()
        return payment.id if payment is not None and payment.method == "terminal" else None


def deposit_of_payment(engine: Engine, payment_id: str) -> Deposit | None:
    with Session(engine) as session:
        return session.exec(select(Deposit).where(Deposit.payment_id == payment_id)).first()
