"""Money at the front desk: counter invoices, terminal payments, deposits, refunds, invoice
cancellation, and the Gravity postback receiver. The work is in `operations.payments` (shared with the
CLI); this module validates the request, maps refusals to 4xx and answers.

Every POST here that can move money requires an `Idempotency-Key` (400 without one) and passes it on
as the operation's `request_id`, which names the movement's workflow: a retry with the same key, even
after the request that started it died, joins the same payment, deposit or refund instead of making a
second one. Refunds and card deposits answer with their result when it comes within
`money_wait_s` (200 / 201), else 202 with a `Location` to poll; a movement that lost a race for the
money (another refund took it) answers 409.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, money_key, runtime
from api.errors import ERRORS, ApiError, ErrorBody, conflict, error_body, not_found, refusals, refused
from api.fields import MAX_CENTS, MAX_LINES, CleanText, Count, Flag, Id, PathId
from api.limits import check_amount, check_invoice, location_of_client
from api.reach import body_location_reached, load_reached, movement_reached
from api.routes.invoices import InvoiceSummary
from api.text import first_unsafe_field
from foundation.contracts import DepositOutcome, RefundResult, TerminalView
from foundation.ids import cancellation_workflow_id, card_deposit_workflow_id, refund_workflow_id, terminal_workflow_id
from foundation.scopes import Caller
from gravity.conventions import POSTBACK_SIGNATURE_HEADER
from gravity.postback import verify
from models.billing import Deposit, Invoice, Payment
from models.clinic import Client, Location
from operations import payments as ops
from workflows.terminal_payment import TerminalPaymentWorkflow

router = APIRouter(tags=["payments"], responses=ERRORS, dependencies=[Depends(current_caller)])
postbacks = APIRouter(tags=["gravity"])

#: Which request field a refusal message is about, first match wins.
_FIELD_WORDS = (
    ("device", "device_name"),
    ("refund amount", "amount_cents"),
    ("cents", "amount_cents"),
    ("amount", "amount_cents"),
    ("line", "lines"),
    ("card", "card_id"),
    ("deposit", "deposit_id"),
    ("invoice", "invoice_id"),
    ("client", "client_id"),
    ("payment", "payment_id"),
    ("location", "location_id"),
)


def _refusal(error: Exception) -> ApiError:
    reason = str(error)
    lowered = reason.lower()
    field = next((name for word, name in _FIELD_WORDS if word in lowered), "body")
    if isinstance(error, ops.PaymentConflict) or any(word in lowered for word in _CONFLICT_WORDS):
        return conflict(field, reason)
    return refused(field, reason)


#: Refusals that depend on what other requests did meanwhile (409, not 422).
_CONFLICT_WORDS = ("already", "in progress", "busy", "nothing left", "still refundable")


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: CleanText = Field(min_length=1, max_length=200)
    amount_cents: Count = Field(ge=1, le=MAX_CENTS)
    kind: str = Field(default="service", pattern=r"^(service|product|fee)$")


class CounterInvoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.COUNTER_INVOICE_IN))
    client_id: Id
    location_id: Id
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES, description="At most the location's max_invoice_lines")


class TerminalPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.TERMINAL_PAYMENT_IN))
    location_id: Id
    device_name: CleanText = Field(min_length=1, max_length=100)
    invoice_id: Id
    amount_cents: Count | None = Field(default=None, ge=1, le=MAX_CENTS, description="Unset: the invoice's open balance")
    save_card: Flag = False
    make_default: Flag = False


class StartedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TERMINAL_STARTED, ex.CANCELLATION_STARTED))
    payment_id: str | None = None
    workflow_id: str
    status_url: str | None = None


class TerminalStatusOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TERMINAL_STATUS))
    payment_id: str
    payment_status: str | None
    workflow: TerminalView | None


class CommandOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TERMINAL_CANCELLED))
    accepted: bool
    status: str
    message: str


class DepositIn(BaseModel):
    """From a saved card (`card_id`) or at a terminal (`location_id` + `device_name`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.DEPOSIT_IN))
    client_id: Id
    amount_cents: Count = Field(ge=1, le=MAX_CENTS)
    card_id: Id | None = None
    location_id: Id | None = None
    device_name: CleanText | None = Field(default=None, min_length=1, max_length=100)


class DepositOut(BaseModel):
    """A card deposit: its answer (201), or `running` while it is still being charged (202; poll `status_url`)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DEPOSIT_OUT, ex.DEPOSIT_RUNNING))
    payment_id: str
    status: str = Field(description="running | approved | partial | declined | refused | failed")
    approved_cents: int
    deposit_id: str | None
    message: str
    status_url: str | None = None


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.REFUND_IN))
    amount_cents: Count | None = Field(default=None, ge=1, le=MAX_CENTS, description="Unset: everything still refundable")
    reason: CleanText = Field(default="", max_length=500)


class RefundOut(BaseModel):
    """A refund: its answer (200), or `running` while Gravity is still giving the money back (202; poll `status_url`)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.REFUND_OUT, ex.REFUND_RUNNING))
    refund_request_id: str
    status: str = Field(description="running | done | failed (Gravity would not give it back) | refused")
    payment_id: str | None = None
    kind: str | None = Field(default=None, description="void | refund once done")
    amount_cents: int = 0
    refund_id: str | None = None
    message: str = ""
    status_url: str


class InvoiceCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.INVOICE_CANCEL_IN))
    reason: CleanText = Field(default="", max_length=500)


def _refund_out(
    refund_request_id: str, result: RefundResult | None, *, status: str = "running", message: str = "still giving the money back; poll status_url"
) -> RefundOut:
    url = f"/refunds/{refund_request_id}"
    if result is None:
        return RefundOut(refund_request_id=refund_request_id, status=status, message=message, status_url=url)
    return RefundOut(
        refund_request_id=refund_request_id,
        status=result.status,
        payment_id=result.payment_id,
        kind=result.kind,
        amount_cents=result.amount_cents,
        refund_id=result.refund_id,
        message=result.message,
        status_url=url,
    )


def _refund_answer(refund_request_id: str, movement: ops.Movement[RefundResult]) -> JSONResponse:
    out = _refund_out(refund_request_id, movement.result)
    if movement.result is None:
        return JSONResponse(out.model_dump(), status_code=202, headers={"Location": out.status_url})
    return JSONResponse(out.model_dump(), status_code=200)


def _deposit_out(payment_id: str, outcome: DepositOutcome | None) -> DepositOut:
    url = f"/card-deposits/{payment_id}"
    if outcome is None:
        return DepositOut(
            payment_id=payment_id, status="running", approved_cents=0, deposit_id=None, message="still charging the card; poll status_url", status_url=url
        )
    return DepositOut(
        payment_id=payment_id,
        status=outcome.status,
        approved_cents=outcome.approved_cents,
        deposit_id=outcome.deposit_id,
        message=outcome.message,
        status_url=url,
    )


def _client_reached(rt: Runtime, caller: Caller, client_id: str) -> None:
    """A client named in a body at a location out of reach is refused as an unknown client is."""
    if caller.reach is None:
        return
    with Session(rt.engine) as session:
        owner = session.get(Client, client_id)
    if owner is not None and not caller.reaches(owner.location_id):
        raise refused("client_id", f"unknown client {client_id}")


async def _start_terminal(rt: Runtime, caller: Caller, request: ops.TerminalRequest) -> StartedOut:
    body_location_reached(caller, request.location_id)
    try:
        handle = await ops.start_terminal_payment(rt.temporal, rt.engine, rt.gateways, request, task_queue=rt.task_queue, actor=caller.actor)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    except LookupError as error:  # the location's merchant OID has no Gravity credential here
        raise refused("location_id", str(error)) from None
    payment_id = handle.id.removeprefix("terminal-payment:")
    return StartedOut(payment_id=payment_id, workflow_id=handle.id, status_url=f"/terminal-payments/{payment_id}")


# ------------------------------------------------------------------------------------ routes
@router.post(
    "/invoices",
    status_code=201,
    response_model=InvoiceSummary,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(
        refused="an unknown client or location, or a client of another location; more lines than the location's "
        "max_invoice_lines; a line or the total above its max_invoice_cents"
    ),
)
def create_counter_invoice(body: CounterInvoiceIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Invoice:
    body_location_reached(caller, body.location_id)
    with Session(rt.engine) as session:
        check_invoice(session.get(Location, body.location_id), [line.amount_cents for line in body.lines])
    lines = [ops.CounterLine(line.description, line.amount_cents, line.kind) for line in body.lines]
    try:
        invoice_id = ops.create_counter_invoice_for(rt.engine, client_id=body.client_id, location_id=body.location_id, lines=lines, actor=caller.actor)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    with Session(rt.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        return invoice


@router.post(
    "/terminal-payments",
    status_code=202,
    response_model=StartedOut,
    responses=refusals(
        refused="an unknown location, device or invoice, or an invoice of another location; an invoice that is not open; "
        "an amount above the open balance or the location's max_invoice_cents",
        conflict="the terminal is busy with another payment, or this invoice already has one in progress",
    ),
)
async def start_terminal_payment(
    body: TerminalPaymentIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key), caller: Caller = Depends(current_caller)
) -> StartedOut:
    """Send the amount to the counter terminal; follow it at `status_url` (the result also comes as events)."""
    body_location_reached(caller, body.location_id)
    with Session(rt.engine) as session:
        check_amount(session.get(Location, body.location_id), "amount_cents", body.amount_cents)
    return await _start_terminal(
        rt,
        caller,
        ops.TerminalRequest(
            location_id=body.location_id,
            device_name=body.device_name,
            invoice_id=body.invoice_id,
            amount_cents=body.amount_cents,
            save_card=body.save_card,
            make_default=body.make_default,
            request_id=key,
        ),
    )


@router.get("/terminal-payments/{payment_id}", response_model=TerminalStatusOut)
async def terminal_payment_status(payment_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> TerminalStatusOut:
    with Session(rt.engine) as session:
        payment = session.get(Payment, payment_id)
        where = payment.location_id if payment is not None else None
        movement_reached(session, caller, terminal_workflow_id(payment_id), where, "payment_id", "terminal payment", payment_id)
    try:
        view: TerminalView | None = await rt.temporal.get_workflow_handle(terminal_workflow_id(payment_id)).query(TerminalPaymentWorkflow.status)
    except RPCError:
        view = None
    if payment is None and view is None:
        raise not_found("payment_id", f"unknown terminal payment {payment_id}")
    return TerminalStatusOut(payment_id=payment_id, payment_status=payment.status if payment else None, workflow=view)


@router.post(
    "/terminal-payments/{payment_id}/cancel",
    response_model=CommandOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(conflict="the terminal payment has finished or can no longer be cancelled"),
)
async def cancel_terminal_payment(payment_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> CommandOut:
    with Session(rt.engine) as session:
        payment = session.get(Payment, payment_id)
        where = payment.location_id if payment is not None else None
        movement_reached(session, caller, terminal_workflow_id(payment_id), where, "payment_id", "terminal payment", payment_id)
    try:
        result = await ops.cancel_terminal_payment(rt.temporal, payment_id, engine=rt.engine, actor=caller.actor)
    except WorkflowUpdateFailedError as error:
        cause: BaseException = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise conflict("status", str(cause)) from None
    except RPCError as error:
        if "not found" in str(error).lower():
            raise not_found("payment_id", f"unknown terminal payment {payment_id}") from None
        raise conflict("status", f"terminal payment {payment_id} has finished") from None
    return CommandOut(accepted=result.accepted, status=result.status, message=result.message)


@router.post(
    "/deposits",
    status_code=201,
    response_model=DepositOut | StartedOut,
    responses={
        202: {"model": DepositOut | StartedOut, "description": "Still being charged (card: poll status_url), or sent to the terminal"},
        **refusals(
            refused="both or neither of card_id and location_id + device_name; an unknown client, card or device, or a card of another "
            "client; an amount above the client's location's max_invoice_cents",
            conflict="the terminal is busy with another payment",
        ),
    },
)
async def take_deposit(
    body: DepositIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key), caller: Caller = Depends(current_caller)
) -> JSONResponse:
    """A prepayment kept as client credit: charged to a saved card (201, or 202 while still charging) or taken at a terminal (202)."""
    _client_reached(rt, caller, body.client_id)
    with Session(rt.engine) as session:
        check_amount(location_of_client(session, body.client_id), "amount_cents", body.amount_cents)
    if body.card_id is not None and (body.location_id or body.device_name):
        raise refused("card_id", "give either card_id or location_id + device_name, not both")
    if body.card_id is not None:
        try:
            movement = await ops.take_card_deposit(
                rt.temporal,
                rt.engine,
                client_id=body.client_id,
                card_id=body.card_id,
                amount_cents=body.amount_cents,
                request_id=key,
                task_queue=rt.task_queue,
                wait_s=rt.settings.money_wait_s,
                actor=caller.actor,
            )
        except ops.PaymentRefused as error:
            raise _refusal(error) from None
        out = _deposit_out(ops.card_deposit_payment_id(body.client_id, key, caller.actor), movement.result)
        if movement.result is None:
            return JSONResponse(out.model_dump(), status_code=202, headers={"Location": out.status_url or ""})
        return JSONResponse(out.model_dump(), status_code=201)
    if not body.location_id or not body.device_name:
        raise refused("card_id", "give card_id, or location_id and device_name for a terminal deposit")
    started = await _start_terminal(
        rt,
        caller,
        ops.TerminalRequest(
            location_id=body.location_id,
            device_name=body.device_name,
            amount_cents=body.amount_cents,
            purpose="deposit",
            client_id=body.client_id,
            request_id=key,
        ),
    )
    return JSONResponse(started.model_dump(), status_code=202)


@router.get("/card-deposits/{payment_id}", response_model=DepositOut)
async def card_deposit_status(payment_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> DepositOut:
    """Where a deposit charged to a saved card is: `running`, or its answer."""
    with Session(rt.engine) as session:
        payment = session.get(Payment, payment_id)
        where = payment.location_id if payment is not None else None
        movement_reached(session, caller, card_deposit_workflow_id(payment_id), where, "payment_id", "card deposit", payment_id)
    view = await ops.card_deposit_status(rt.temporal, rt.engine, payment_id)
    if view is None:
        raise not_found("payment_id", f"unknown card deposit {payment_id}")
    return _deposit_out(payment_id, view.outcome)


@router.post(
    "/deposits/{deposit_id}/refund",
    response_model=RefundOut,
    responses={
        202: {"model": RefundOut, "description": "Still giving the money back: poll status_url (also in Location)"},
        **refusals(refused="a deposit that was not paid by card", conflict="nothing is left of the deposit, or another refund of it is in progress"),
    },
)
async def refund_deposit(
    deposit_id: PathId, rt: Runtime = Depends(runtime), key: str = Depends(money_key), caller: Caller = Depends(current_caller)
) -> JSONResponse:
    """Give back what is left of an unused deposit to the card that paid it."""
    with Session(rt.engine) as session:
        load_reached(session, caller, Deposit, deposit_id, "deposit_id", "deposit")
    try:
        movement = await ops.refund_deposit(
            rt.temporal,
            rt.engine,
            deposit_id=deposit_id,
            request_id=key,
            task_queue=rt.task_queue,
            wait_s=rt.settings.money_wait_s,
            actor=caller.actor,
        )
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    return _refund_answer(ops.refund_id_of(deposit_id=deposit_id, request_id=key, actor=caller.actor), movement)


@router.post(
    "/payments/{payment_id}/refunds",
    response_model=RefundOut,
    responses={
        202: {"model": RefundOut, "description": "Still giving the money back: poll status_url (also in Location)"},
        **refusals(
            refused="a payment that was not approved; an amount above what is still refundable or the location's max_invoice_cents",
            conflict="another refund took what was refundable meanwhile, or one is in progress",
        ),
    },
)
async def refund_payment(
    payment_id: PathId, body: RefundIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key), caller: Caller = Depends(current_caller)
) -> JSONResponse:
    """Refund all or part of a card payment (a void while Gravity still allows one)."""
    with Session(rt.engine) as session:
        payment = load_reached(session, caller, Payment, payment_id, "payment_id", "payment")
        check_amount(session.get(Location, payment.location_id), "amount_cents", body.amount_cents)
    try:
        movement = await ops.refund_payment(
            rt.temporal,
            rt.engine,
            payment_id=payment_id,
            amount_cents=body.amount_cents,
            request_id=key,
            reason=body.reason,
            task_queue=rt.task_queue,
            wait_s=rt.settings.money_wait_s,
            actor=caller.actor,
        )
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    return _refund_answer(ops.refund_id_of(payment_id=payment_id, request_id=key, actor=caller.actor), movement)


@router.get("/refunds/{refund_request_id}", response_model=RefundOut)
async def refund_status(refund_request_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> RefundOut:
    """Where a refund (of a payment or a deposit) is: `running`, or how it ended."""
    with Session(rt.engine) as session:
        movement_reached(session, caller, refund_workflow_id(refund_request_id), None, "refund_request_id", "refund", refund_request_id)
    view = await ops.refund_status(rt.temporal, refund_request_id)
    if view is None:
        raise not_found("refund_request_id", f"unknown refund {refund_request_id}")
    if view.result is None and view.status != "running":
        return _refund_out(refund_request_id, None, status=view.status, message=view.message)
    return _refund_out(refund_request_id, view.result)


@router.post(
    "/invoices/{invoice_id}/cancel",
    status_code=202,
    response_model=StartedOut,
    responses=refusals(refused="an invoice of a subscription (cancel the subscription instead)", conflict="the invoice is already void or being cancelled"),
)
async def cancel_invoice(
    invoice_id: PathId, body: InvoiceCancelIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key), caller: Caller = Depends(current_caller)
) -> StartedOut:
    """Start the saga that gives back every payment on the invoice and voids it (once per invoice)."""
    with Session(rt.engine) as session:
        load_reached(session, caller, Invoice, invoice_id, "invoice_id", "invoice")
    try:
        handle = await ops.cancel_invoice(
            rt.temporal, rt.engine, invoice_id=invoice_id, reason=body.reason, task_queue=rt.task_queue, actor=caller.actor, request_key=key
        )
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    return StartedOut(workflow_id=handle.id or cancellation_workflow_id(invoice_id))


class PostbackReceiptOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.POSTBACK_RECEIPT))
    status: str = Field(description="routed | ignored")
    external_transaction_id: str


POSTBACK_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Gravity's transaction result (flat, or wrapped in transactionResponse), signed as it was sent",
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True, "examples": [ex.POSTBACK_IN]}}},
    },
    "parameters": [
        {
            "name": POSTBACK_SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Base64 HMAC-SHA512 of the raw body under BILLING_POSTBACK_SECRET, as Gravity sends it (401 when missing or wrong)",
        }
    ],
}


@postbacks.post(
    "/gravity/postbacks",
    summary="Gravity's signed transaction postbacks (HMAC, no bearer credential)",
    openapi_extra=POSTBACK_DOC,
    responses={
        200: {"model": PostbackReceiptOut, "description": "Routed to the payment's workflow, or ignored (unknown payment, workflow finished)"},
        400: {"model": ErrorBody, "description": "error: validation: a body that is not a transaction result, or holds text `api.text` refuses"},
        401: {"model": ErrorBody, "description": "error: unauthorized: the hmac-signature does not verify"},
        503: {"model": ErrorBody, "description": "error: unavailable: postbacks are not configured (BILLING_POSTBACK_SECRET)"},
    },
)
async def gravity_postback(request: Request, rt: Runtime = Depends(runtime)) -> JSONResponse:
    """Verified by HMAC over the raw body before anything in it is read; routed to the payment's workflow."""
    secret = rt.settings.postback_secret
    if secret is None:
        return JSONResponse({"error": "unavailable", "message": "postbacks are not configured (BILLING_POSTBACK_SECRET)", "fields": []}, status_code=503)
    body = await request.body()
    signature = request.headers.get(POSTBACK_SIGNATURE_HEADER)
    if verify(body, signature, secret.get_secret_value()):
        unsafe = _unsafe_postback_text(body)
        if unsafe is not None:
            return JSONResponse(error_body("validation", f"{unsafe[0]}: {unsafe[1]}", [unsafe]), status_code=400)
    try:
        receipt = await ops.receive_postback(rt.temporal, rt.engine, body=body, signature=signature, secret=secret.get_secret_value())
    except ops.PostbackRejected as error:
        kind = "unauthorized" if error.status == 401 else "validation"
        return JSONResponse(
            {"error": kind, "message": str(error), "fields": [{"field": "body" if error.status != 401 else POSTBACK_SIGNATURE_HEADER, "reason": str(error)}]},
            status_code=error.status,
        )
    return JSONResponse({"status": receipt.status, "external_transaction_id": receipt.external_transaction_id})


def _unsafe_postback_text(body: bytes) -> tuple[str, str] | None:
    """A text field of a verified postback the database cannot or should not hold (a NUL in the
    transaction id), as (field, reason); a body that is not JSON is left to `receive_postback`."""
    try:
        return first_unsafe_field(json.loads(body))
    except ValueError:
        return None
