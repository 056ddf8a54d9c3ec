"""The bookkeeping of a subscription's cancellation and plan change: unpaid cycle invoices voided,
the early-cancellation settlement (an invoice, refunds reserved on the period's card payments, or
client credit) and a plan change's proration (an invoice or client credit).

Each is keyed on the subscription (and the change's moment), so a retried command finds what its
first try wrote instead of settling twice.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from books.attempts import lock_invoice
from books.credit import return_credit_application
from books.invoices import LineSpec, create_counter_invoice
from books.ledger import post
from books.recognition import give_back_unearned
from books.refunds import refundable_cents, start_refund
from books.voiding import void_invoice, write_off_unpaid
from foundation.contracts import PlanChangeInput
from foundation.ids import (
    external_id,
    invoice_id_for,
    invoice_id_for_cycle,
    proration_credit_deposit_id,
    proration_credit_reference,
    proration_invoice_key,
    settlement_credit_deposit_id,
    settlement_credit_reference,
    settlement_invoice_key,
    settlement_refund_key,
    settlement_refund_prefix,
)
from foundation.statuses import InvoiceStatus, PaymentStatus
from models.billing import CreditApplication, Deposit, Invoice, Payment, Refund
from models.ledger import Account
from models.subscriptions import Subscription


def void_unpaid(session: Session, invoice_id: str, reason: str) -> str | None:
    """Void a still-open cycle invoice of a cancelled subscription: applied client credit goes
    back to its deposit, then the invoice is voided with its issue posting reversed. An invoice a
    card already paid part of keeps that part (it was service delivered) and only its unpaid
    remainder is written off."""
    invoice = lock_invoice(session, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.OPEN:
        return None
    for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id == invoice.id)).all():
        assert application.id is not None
        return_credit_application(session, application.id)
    if invoice.paid_cents == 0:
        void_invoice(session, invoice, reason=reason)
        return invoice.id
    write_off_unpaid(session, invoice, reason=reason)
    return invoice.id


def settlement_refunds(session: Session, subscription_id: str) -> list[Refund]:
    """The settlement's refund rows an earlier try reserved, if any."""
    prefix = settlement_refund_prefix(subscription_id)
    rows = session.exec(select(Refund).where(Refund.attempt_key.like(f"{prefix}%"))).all()  # type: ignore[attr-defined]
    return [r for r in rows if r.attempt_key == prefix or r.attempt_key.startswith(prefix + ":")]


def reserve_settlement_refunds(session: Session, sub: Subscription, period_start: date | None, amount_cents: int) -> list[Refund]:
    """Spread the settlement refund over the current period's card payments, largest first, each
    reserved now (write before send). What cards cannot take back (the period was paid with client
    credit) goes back to the client as credit."""
    if period_start is not None:
        # The period's invoice before any payment, the order a charge and a finished refund lock them in.
        lock_invoice(session, invoice_id_for_cycle(sub.id, period_start))
    rows: list[Refund] = []
    left = amount_cents
    for index, payment in enumerate(_current_period_payments(session, sub.id, period_start)):
        amount = min(left, refundable_cents(payment))
        if amount <= 0:
            continue
        key = settlement_refund_key(sub.id, index, payment.id)
        refund, _ = start_refund(
            session,
            payment_id=payment.id,
            amount_cents=amount,
            kind="refund",
            attempt_key=key,
            external_transaction_id=external_id(key),
            reason="early cancellation: unused part of the current period",
        )
        rows.append(refund)
        left -= amount
    if left > 0:
        _settlement_credit(session, sub, period_start, left)
    return rows


def _settlement_credit(session: Session, sub: Subscription, period_start: date | None, amount_cents: int) -> None:
    """Unused days paid with client credit go back to the client as credit (off the period's
    deferred revenue first, when it is a yearly one)."""
    deposit_id = settlement_credit_deposit_id(sub.id)
    if session.get(Deposit, deposit_id) is not None:
        return
    session.add(
        Deposit(
            id=deposit_id, client_id=sub.client_id, location_id=sub.location_id, amount_cents=amount_cents, remaining_cents=amount_cents, source="proration"
        )
    )
    session.flush()
    post(
        session,
        reference=settlement_credit_reference(deposit_id),
        kind="settlement_credit",
        location_id=sub.location_id,
        client_id=sub.client_id,
        entries=[(Account.REFUNDS, amount_cents), (Account.CLIENT_CREDIT, -amount_cents)],
    )
    _unearned_given_back(session, sub, period_start, amount_cents, settlement_credit_reference(deposit_id), Account.REFUNDS)


def paid_for_period(session: Session, subscription_id: str, period_start: date) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(Payment.approved_cents - Payment.refunded_cents), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.subscription_id == subscription_id, Invoice.period_start == period_start, Payment.status == PaymentStatus.APPROVED)
    ).one()
    return int(total)


def _current_period_payments(session: Session, subscription_id: str, period_start: date | None) -> list[Payment]:
    """The current period's approved card payments, largest first."""
    if period_start is None:
        return []
    return list(
        session.exec(
            select(Payment)
            .join(Invoice, Invoice.id == Payment.invoice_id)  # type: ignore[arg-type]
            .where(
                Invoice.subscription_id == subscription_id,
                Invoice.period_start == period_start,
                Payment.status == PaymentStatus.APPROVED,
                Payment.method != "credit",
            )
            .order_by(Payment.approved_cents.desc(), Payment.id)  # type: ignore[attr-defined]
        ).all()
    )


def _one_off_invoice(session: Session, sub: Subscription, *, key: str, kind: str, amount_cents: int, description: str, revenue: Account) -> str:
    """A settlement or proration invoice, created once per key, with its ledger posting."""
    invoice_id = invoice_id_for(key)
    if session.get(Invoice, invoice_id) is not None:
        return invoice_id
    create_counter_invoice(
        session,
        invoice_id=invoice_id,
        client_id=sub.client_id,
        location_id=sub.location_id,
        lines=[LineSpec(kind, description, amount_cents, revenue)],
        kind=kind,
        subscription_id=sub.id,
    )
    return invoice_id


def settlement_invoice(session: Session, sub: Subscription, amount_cents: int, reason: str) -> str:
    return _one_off_invoice(
        session,
        sub,
        key=settlement_invoice_key(sub.id),
        kind="settlement",
        amount_cents=amount_cents,
        description=f"Early cancellation settlement: {reason}",
        revenue=Account.FEE_REVENUE,
    )


def proration_invoice(session: Session, sub: Subscription, request: PlanChangeInput, amount_cents: int) -> str:
    return _one_off_invoice(
        session,
        sub,
        key=proration_invoice_key(sub.id, request.change_at),
        kind="proration",
        amount_cents=amount_cents,
        description=f"Plan change {request.old_plan.plan_id} -> {request.new_plan_id}, rest of period",
        revenue=Account.PLAN_REVENUE,
    )


def proration_credit(session: Session, sub: Subscription, request: PlanChangeInput, amount_cents: int) -> None:
    """A downgrade's unused difference becomes client credit, applied to the next invoices."""
    deposit_id = proration_credit_deposit_id(sub.id, request.change_at)
    if session.get(Deposit, deposit_id) is not None:
        return
    session.add(Deposit(id=deposit_id, client_id=sub.client_id, location_id=sub.location_id, amount_cents=amount_cents, remaining_cents=amount_cents))
    session.flush()
    post(
        session,
        reference=proration_credit_reference(deposit_id),
        kind="proration_credit",
        location_id=sub.location_id,
        client_id=sub.client_id,
        entries=[(Account.PLAN_REVENUE, amount_cents), (Account.CLIENT_CREDIT, -amount_cents)],
    )
    _unearned_given_back(session, sub, request.period_start, amount_cents, proration_credit_reference(deposit_id), Account.PLAN_REVENUE)


def _unearned_given_back(session: Session, sub: Subscription, period_start: date | None, amount_cents: int, source_reference: str, against: Account) -> None:
    """Credit given back for the current period comes off what its cycle invoice still defers (a
    yearly plan's), so the months left do not earn what the client got back."""
    if period_start is None:
        return
    invoice = lock_invoice(session, invoice_id_for_cycle(sub.id, period_start))
    if invoice is None or invoice.status == InvoiceStatus.VOID:
        return
    give_back_unearned(session, invoice, amount_cents, source_reference=source_reference, against=against, memo="credit for the unused part of the period")
