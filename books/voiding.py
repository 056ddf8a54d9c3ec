"""Voiding an invoice: reversing a fully compensated one, or writing off a partly paid one's
unpaid remainder, so a cancelled invoice leaves no revenue it did not earn."""

from __future__ import annotations

from sqlmodel import Session, select

from books.balances import open_balance, reduce_paid
from books.credit import credit_returned
from books.ledger import entries_of, post_for_invoice, posted, split_pro_rata
from books.recognition import recognize_rest, recognized_on, restore_unearned, unwind_recognized
from foundation.ids import event_stream, invoice_issued_reference, invoice_refunds_reclassified_reference, invoice_void_reference, invoice_voided_event_key
from foundation.statuses import InvoiceStatus, PaymentStatus, RefundStatus
from models.billing import CreditApplication, Invoice, Payment, Refund
from models.columns import utcnow
from models.ledger import Account
from models.outbox import emit


def write_off_unpaid(session: Session, invoice: Invoice, *, reason: str) -> int:
    """Void a partly paid invoice: what was paid stays earned, and the unpaid remainder's revenue is
    reversed across the invoice's revenue accounts in proportion to what it billed to each (an
    enrollment fee's share comes off fee revenue, not plan revenue); what was paid on a yearly
    invoice's deferred revenue is earned at once. Returns the cents written off."""
    # The write-off reverses the issue posting's share of the unpaid part, deferred revenue included,
    # so a credit that already took its part off deferred revenue must put it back first.
    restore_unearned(session, invoice)
    unpaid = open_balance(invoice)
    issued = posted(session, invoice_issued_reference(invoice.id))
    revenue: dict[Account, int] = {}
    if issued is not None:
        for entry in entries_of(session, issued):
            if entry.account != Account.RECEIVABLE:
                revenue[Account(entry.account)] = revenue.get(Account(entry.account), 0) - entry.amount_cents
    shares = split_pro_rata(unpaid, revenue) or {Account.PLAN_REVENUE: unpaid}
    _mark_void(session, invoice)
    post_for_invoice(
        session,
        invoice,
        reference=invoice_void_reference(invoice.id),
        kind="invoice_void",
        memo=f"{reason}: unpaid remainder written off",
        entries=[*((account, cents) for account, cents in shares.items()), (Account.RECEIVABLE, -unpaid)],
    )
    recognize_rest(session, invoice, memo=f"{reason}: the paid part of a deferred invoice earned at once")
    session.flush()
    return unpaid


def void_refusal(session: Session, invoice: Invoice) -> str | None:
    """Why the invoice cannot be voided yet (None: it can): a payment still holds money, a refund
    is unfinished, or an applied credit was not returned."""
    holding = session.exec(
        select(Payment).where(Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.APPROVED, Payment.approved_cents > Payment.refunded_cents)
    ).first()
    if holding is not None:
        return f"payment {holding.id} still holds money on invoice {invoice.id}"
    unsettled = session.exec(select(Refund).where(Refund.invoice_id == invoice.id, Refund.status.in_((RefundStatus.PENDING, RefundStatus.UNKNOWN)))).first()  # type: ignore[attr-defined]
    if unsettled is not None:
        return f"refund {unsettled.id} on invoice {invoice.id} is not finished"
    for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id == invoice.id)).all():
        assert application.id is not None
        if not credit_returned(session, application.id):
            return f"credit application {application.id} on invoice {invoice.id} was not returned"
    return None


def void_invoice(session: Session, invoice: Invoice, *, reason: str) -> None:
    """Void a fully compensated invoice: reverse its issue posting so it leaves no revenue behind.

    What is still counted as paid at this point was refunded earlier (already an expense in
    `refunds`); it is reclassified against the receivable first, then the issue posting is reversed
    entry by entry. Raises ValueError while `void_refusal` has a reason.
    """
    if invoice.status == InvoiceStatus.VOID:
        return
    refusal = void_refusal(session, invoice)
    if refusal is not None:
        raise ValueError(refusal)
    restore_unearned(session, invoice)  # the issue posting is reversed whole, so deferred revenue must hold it whole
    if invoice.paid_cents > 0:
        leftover = invoice.paid_cents
        post_for_invoice(
            session,
            invoice,
            reference=invoice_refunds_reclassified_reference(invoice.id),
            kind="invoice_void_refunds",
            entries=[(Account.RECEIVABLE, leftover), (Account.REFUNDS, -leftover)],
        )
        reduce_paid(session, invoice, leftover)
    issued = posted(session, invoice_issued_reference(invoice.id))
    if issued is not None:
        post_for_invoice(
            session,
            invoice,
            reference=invoice_void_reference(invoice.id),
            kind="invoice_void",
            memo=reason,
            entries=unwind_recognized(
                [(Account(entry.account), -entry.amount_cents) for entry in entries_of(session, issued)], recognized_on(session, invoice.id)
            ),
        )
    _mark_void(session, invoice)
    stream = event_stream(invoice.subscription_id, invoice.client_id)
    emit(session, type="invoice.voided", stream=stream, payload={"invoice_id": invoice.id, "reason": reason}, dedupe_key=invoice_voided_event_key(invoice.id))
    session.flush()


def _mark_void(session: Session, invoice: Invoice) -> None:
    """The invoice is closed: nothing more is owed or retried on it."""
    invoice.status = InvoiceStatus.VOID
    invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
