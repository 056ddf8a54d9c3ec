"""Money at the front desk: counter invoices, terminal payments, deposits, refunds, invoice
cancellation, and the Gravity postback receiver. The work is in `operations.payments` (shared with the
CLI); this module validates the request, maps refusals to 4xx and answers.

Every POST here that can move money requires an `Idempotency-Key` (400 without one) and passes it on
as the operation's `request_id`: a retry with the same key, even after the middleware's stored answer
is gone, finds the same payment, deposit or refund instead of making a second one.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import Runtime, idempotency_key, money_key, require_token, runtime
from api.errors import ERRORS, ApiError, conflict, not_found, refused
from api.routes.invoices import InvoiceSummary
from foundation.contracts import GiveBackOutcome, TerminalView
from gravity.conventions import POSTBACK_SIGNATURE_HEADER
from models.billing import Deposit, Invoice, Payment
from operations import payments as ops
from workflows.invoice_cancellation import cancellation_workflow_id
from workflows.terminal_payment import TerminalPaymentWorkflow, terminal_workflow_id

router = APIRouter(tags=["payments"], responses=ERRORS, dependencies=[Depends(require_token)])
postbacks = APIRouter(tags=["gravity"])

MAX_CENTS = 10_000_000

#: Which request field a refusal message is about, first match wins.
_FIELD_WORDS = (("device", "device_name"), ("refund amount", "amount_cents"), ("cents", "amount_cents"), ("amount", "amount_cents"),
                ("line", "lines"), ("card", "card_id"), ("deposit", "deposit_id"), ("invoice", "invoice_id"),
                ("client", "client_id"), ("payment", "payment_id"), ("location", "location_id"))


def _refusal(error: Exception) -> ApiError:
    reason = str(error)
    lowered = reason.lower()
    field = next((name for word, name in _FIELD_WORDS if word in lowered), "body")
    if "already" in lowered or "in progress" in lowered or "busy" in lowered or "nothing left" in lowered:
        return conflict(field, reason)
    return refused(field, reason)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, max_length=200)
    amount_cents: int = Field(ge=1, le=MAX_CENTS)
    kind: str = Field(default="service", pattern=r"^(service|product|fee)$")


class CounterInvoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=1)
    location_id: str = Field(min_length=1)
    lines: list[LineIn] = Field(min_length=1, max_length=100)


class TerminalPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location_id: str = Field(min_length=1)
    device_name: str = Field(min_length=1)
    invoice_id: str = Field(min_length=1)
    amount_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS, description="Unset: the invoice's open balance")
    save_card: bool = False
    make_default: bool = False


class StartedOut(BaseModel):
    payment_id: str | None = None
    workflow_id: str
    status_url: str | None = None


class TerminalStatusOut(BaseModel):
    payment_id: str
    payment_status: str | None
    workflow: TerminalView | None


class CommandOut(BaseModel):
    accepted: bool
    status: str
    message: str


class DepositIn(BaseModel):
    """From a saved card (`card_id`) or at a terminal (`location_id` + `device_name`)."""

    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=1)
    amount_cents: int = Field(ge=1, le=MAX_CENTS)
    card_id: str | None = Field(default=None, min_length=1)
    location_id: str | None = Field(default=None, min_length=1)
    device_name: str | None = Field(default=None, min_length=1)


class DepositOut(BaseModel):
    payment_id: str
    status: str
    approved_cents: int
    deposit_id: str | None
    message: str


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS, description="Unset: everything still refundable")
    reason: str = Field(default="", max_length=500)


class InvoiceCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


def _give_back(outcome: GiveBackOutcome) -> dict[str, object]:
    return {"payment_id": outcome.payment_id, "kind": outcome.kind, "amount_cents": outcome.amount_cents, "refund_id": outcome.refund_id}


async def _start_terminal(rt: Runtime, request: ops.TerminalRequest) -> StartedOut:
    try:
        handle = await ops.start_terminal_payment(rt.temporal, rt.engine, rt.gateways, request, task_queue=rt.task_queue)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    payment_id = handle.id.removeprefix("terminal-payment:")
    return StartedOut(payment_id=payment_id, workflow_id=handle.id, status_url=f"/terminal-payments/{payment_id}")


# ------------------------------------------------------------------------------------ routes
@router.post("/invoices", status_code=201, response_model=InvoiceSummary, dependencies=[Depends(idempotency_key)])
def create_counter_invoice(body: CounterInvoiceIn, rt: Runtime = Depends(runtime)) -> Invoice:
    lines = [ops.CounterLine(line.description, line.amount_cents, line.kind) for line in body.lines]
    try:
        invoice_id = ops.create_counter_invoice_for(rt.engine, client_id=body.client_id, location_id=body.location_id, lines=lines)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    with Session(rt.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        return invoice


@router.post("/terminal-payments", status_code=202, response_model=StartedOut)
async def start_terminal_payment(body: TerminalPaymentIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key)) -> StartedOut:
    """Send the amount to the counter terminal; follow it at `status_url` (the result also comes as events)."""
    return await _start_terminal(
        rt,
        ops.TerminalRequest(location_id=body.location_id, device_name=body.device_name, invoice_id=body.invoice_id, amount_cents=body.amount_cents,
                            save_card=body.save_card, make_default=body.make_default, request_id=key),
    )


@router.get("/terminal-payments/{payment_id}", response_model=TerminalStatusOut)
async def terminal_payment_status(payment_id: str, rt: Runtime = Depends(runtime)) -> TerminalStatusOut:
    with Session(rt.engine) as session:
        payment = session.get(Payment, payment_id)
    try:
        view: TerminalView | None = await rt.temporal.get_workflow_handle(terminal_workflow_id(payment_id)).query(TerminalPaymentWorkflow.status)
    except RPCError:
        view = None
    if payment is None and view is None:
        raise not_found("payment_id", f"unknown terminal payment {payment_id}")
    return TerminalStatusOut(payment_id=payment_id, payment_status=payment.status if payment else None, workflow=view)


@router.post("/terminal-payments/{payment_id}/cancel", response_model=CommandOut, dependencies=[Depends(idempotency_key)])
async def cancel_terminal_payment(payment_id: str, rt: Runtime = Depends(runtime)) -> CommandOut:
    try:
        result = await ops.cancel_terminal_payment(rt.temporal, payment_id)
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


@router.post("/deposits", status_code=201, response_model=DepositOut | StartedOut)
async def take_deposit(body: DepositIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key)) -> JSONResponse:
    """A prepayment kept as client credit: charged to a saved card (201) or taken at a terminal (202)."""
    if body.card_id is not None and (body.location_id or body.device_name):
        raise refused("card_id", "give either card_id or location_id + device_name, not both")
    if body.card_id is not None:
        try:
            outcome = await ops.take_card_deposit(rt.engine, rt.gateways, client_id=body.client_id, card_id=body.card_id, amount_cents=body.amount_cents, request_id=key)
        except ops.PaymentRefused as error:
            raise _refusal(error) from None
        out = DepositOut(payment_id=outcome.payment_id, status=outcome.status, approved_cents=outcome.approved_cents, deposit_id=outcome.deposit_id, message=outcome.message)
        return JSONResponse(out.model_dump(), status_code=201)
    if not body.location_id or not body.device_name:
        raise refused("card_id", "give card_id, or location_id and device_name for a terminal deposit")
    started = await _start_terminal(
        rt,
        ops.TerminalRequest(location_id=body.location_id, device_name=body.device_name, amount_cents=body.amount_cents, purpose="deposit",
                            client_id=body.client_id, request_id=key),
    )
    return JSONResponse(started.model_dump(), status_code=202)


@router.post("/deposits/{deposit_id}/refund")
async def refund_deposit(deposit_id: str, rt: Runtime = Depends(runtime), key: str = Depends(money_key)) -> dict[str, object]:
    """Give back what is left of an unused deposit to the card that paid it."""
    with Session(rt.engine) as session:
        if session.get(Deposit, deposit_id) is None:
            raise not_found("deposit_id", f"unknown deposit {deposit_id}")
    try:
        return _give_back(await ops.refund_deposit(rt.engine, rt.gateways, deposit_id=deposit_id, request_id=key))
    except ops.PaymentRefused as error:
        raise _refusal(error) from None


@router.post("/payments/{payment_id}/refunds")
async def refund_payment(payment_id: str, body: RefundIn, rt: Runtime = Depends(runtime), key: str = Depends(money_key)) -> dict[str, object]:
    """Refund all or part of a card payment (a void while Gravity still allows one)."""
    with Session(rt.engine) as session:
        if session.get(Payment, payment_id) is None:
            raise not_found("payment_id", f"unknown payment {payment_id}")
    try:
        outcome = await ops.refund_payment(rt.engine, rt.gateways, payment_id=payment_id, amount_cents=body.amount_cents, request_id=key, reason=body.reason)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    return _give_back(outcome)


@router.post("/invoices/{invoice_id}/cancel", status_code=202, response_model=StartedOut, dependencies=[Depends(money_key)])
async def cancel_invoice(invoice_id: str, body: InvoiceCancelIn, rt: Runtime = Depends(runtime)) -> StartedOut:
    """Start the saga that gives back every payment on the invoice and voids it (once per invoice)."""
    with Session(rt.engine) as session:
        if session.get(Invoice, invoice_id) is None:
            raise not_found("invoice_id", f"unknown invoice {invoice_id}")
    try:
        handle = await ops.cancel_invoice(rt.temporal, rt.engine, invoice_id=invoice_id, reason=body.reason, task_queue=rt.task_queue)
    except ops.PaymentRefused as error:
        raise _refusal(error) from None
    return StartedOut(workflow_id=handle.id or cancellation_workflow_id(invoice_id))


@postbacks.post("/gravity/postbacks", summary="Gravity's signed transaction postbacks (HMAC, no bearer credential)")
async def gravity_postback(request: Request, rt: Runtime = Depends(runtime)) -> JSONResponse:
    """Verified by HMAC over the raw body before anything in it is read; routed to the payment's workflow."""
    secret = rt.settings.postback_secret
    if secret is None:
        return JSONResponse({"error": "unavailable", "message": "postbacks are not configured (BILLING_POSTBACK_SECRET)", "fields": []}, status_code=503)
    body = await request.body()
    try:
        receipt = await ops.receive_postback(
            rt.temporal, rt.engine, body=body, signature=request.headers.get(POSTBACK_SIGNATURE_HEADER), secret=secret.get_secret_value()
        )
    except ops.PostbackRejected as error:
        kind = "unauthorized" if error.status == 401 else "validation"
        return JSONResponse({"error": kind, "message": str(error), "fields": [{"field": "body" if error.status != 401 else POSTBACK_SIGNATURE_HEADER, "reason": str(error)}]}, status_code=error.status)
    return JSONResponse({"status": receipt.status, "external_transaction_id": receipt.external_transaction_id})
