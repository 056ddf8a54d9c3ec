"""Invoices with their lines and the payments made on them (declined attempts included: they are
the dunning history), one at a time or all of one client."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, select

from api import examples as ex
from api.deps import Runtime, current_caller, runtime
from api.errors import ERRORS
from api.fields import PathId
from api.reach import load_reached
from api.routes.clients import get_client
from foundation.scopes import Caller
from foundation.statuses import InvoiceStatus
from models.billing import Invoice, InvoiceLine, Payment

router = APIRouter(tags=["invoices"], responses=ERRORS)


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    description: str
    amount_cents: int


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.PAYMENT))
    id: str
    method: str
    purpose: str
    attempt: int
    status: str
    amount_cents: int
    approved_cents: int
    refunded_cents: int
    decline_reason: str | None
    decline_class: str | None
    masked_number: str | None
    brand: str | None
    created_at: datetime | None


class InvoiceSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.INVOICE_SUMMARY, ex.COUNTER_INVOICE))
    id: str
    number: str
    kind: str
    client_id: str
    location_id: str
    subscription_id: str | None
    period_start: date | None
    period_end: date | None
    status: str
    total_cents: int
    paid_cents: int
    due_at: datetime | None
    created_at: datetime | None


class InvoiceOut(InvoiceSummary):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.INVOICE))
    balance_cents: int
    lines: list[LineOut]
    payments: list[PaymentOut]


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
def read_invoice(invoice_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> InvoiceOut:
    with Session(rt.engine) as session:
        invoice = load_reached(session, caller, Invoice, invoice_id, "invoice_id", "invoice")
        lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id))
        payments = session.exec(select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.created_at, Payment.attempt))
        return InvoiceOut(
            **InvoiceSummary.model_validate(invoice).model_dump(),
            balance_cents=invoice.total_cents - invoice.paid_cents if invoice.status == InvoiceStatus.OPEN else 0,
            lines=[LineOut.model_validate(line) for line in lines],
            payments=[PaymentOut.model_validate(payment) for payment in payments],
        )


@router.get("/clients/{client_id}/invoices", response_model=list[InvoiceSummary])
def list_client_invoices(
    client_id: PathId,
    status: str | None = Query(default=None, pattern=r"^(open|paid|void)$", description="Only invoices in this status"),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> list[Invoice]:
    with Session(rt.engine) as session:
        get_client(session, client_id, caller)
        query = select(Invoice).where(Invoice.client_id == client_id)
        if status is not None:
            query = query.where(Invoice.status == status)
        return list(session.exec(query.order_by(Invoice.created_at, Invoice.number)))
