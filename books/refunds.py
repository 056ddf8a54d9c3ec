"""Refunds and voids bookkeeping: money given back on an approved payment, as credit notes with ledger entries.

The refundable amount is reserved on the payment row (under its lock) when the refund is started, so
two refunds racing can never give back more than was taken; a refund that fails releases it. Where
the payment's money became client credit (a deposit, or an approval no invoice needed), the refund
draws on that credit first and reserves it under the deposit's lock the same way, so credit is
never both spent on an invoice and given back to the card.
"""

from __future__ import annotations

from sqlmodel import Session, select

from books.attempts import lock_invoice, lock_payment
from books.balances import reduce_paid
from books.credit import credit_of
from books.ledger import post, post_for_invoice, posted
from books.recognition import give_back_unearned, restore_unearned
from foundation.ids import event_stream, refund_done_event_key, refund_done_reference, refund_id_for, refund_unapplied_reference
from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus
from models.billing import Deposit, Payment, Refund
from models.columns import utcnow
from models.ledger import Account
from models.outbox import emit


class RefundRefused(ValueError):
    """A refund that cannot be made (more than what remains, or a payment that took no money)."""


def refundable_cents(payment: Payment) -> int:
    """What of an approved payment has not been given back yet."""
    return payment.approved_cents - payment.refunded_cents if payment.status == PaymentStatus.APPROVED else 0


def deposit_refund_refusal(payment: Payment, deposit: Deposit | None, amount_cents: int | None) -> str | None:
    """Why a deposit's payment cannot give back `amount_cents` (None: all of it): only the credit
    still unused can go back to the card; what was spent paid invoices."""
    if payment.purpose != "deposit":
        return None
    unused = deposit.remaining_cents if deposit is not None and deposit.status in (DepositStatus.HELD, DepositStatus.RETURNING) else 0
    wanted = refundable_cents(payment) if amount_cents is None else amount_cents
    if wanted <= unused:
        return None
    where = f"deposit {deposit.id}" if deposit is not None else "a deposit"
    return f"payment {payment.id} paid {where}, and only {unused} cents of its credit are unused (the rest paid invoices); refund at most {unused} cents"


def start_refund(
    session: Session,
    *,
    payment_id: str,
    amount_cents: int,
    kind: str,
    attempt_key: str,
    external_transaction_id: str,
    reason: str,
) -> tuple[Refund, bool]:
    """The refund row for `attempt_key`: (row, True) when created now with the amount reserved."""
    existing = session.exec(select(Refund).where(Refund.attempt_key == attempt_key)).first()
    if existing is not None:
        return existing, False
    payment = lock_payment(session, payment_id)
    if amount_cents <= 0:
        raise RefundRefused(f"refund amount must be positive, got {amount_cents} cents")
    available = refundable_cents(payment)
    if amount_cents > available:
        raise RefundRefused(f"refund of {amount_cents} cents exceeds the {available} cents still refundable on payment {payment.id}")
    if kind == "void" and amount_cents != payment.approved_cents:
        raise RefundRefused("a void returns the whole sale; use a refund for part of it")
    deposit = credit_of(session, payment, lock=True)
    refusal = deposit_refund_refusal(payment, deposit, amount_cents)
    if refusal is not None:
        raise RefundRefused(refusal)
    credit = min(amount_cents, deposit.remaining_cents) if deposit is not None and deposit.status in (DepositStatus.HELD, DepositStatus.RETURNING) else 0
    if deposit is not None and credit:
        deposit.remaining_cents -= credit
        session.add(deposit)
    payment.refunded_cents += amount_cents
    payment.updated_at = utcnow()
    refund = Refund(
        id=refund_id_for(external_transaction_id),
        external_transaction_id=external_transaction_id,
        attempt_key=attempt_key,
        payment_id=payment.id,
        invoice_id=payment.invoice_id,
        kind=kind,
        status=RefundStatus.PENDING,
        amount_cents=amount_cents,
        credit_cents=credit,
        deposit_id=deposit.id if deposit is not None and credit else None,
        reason=reason,
    )
    session.add(payment)
    session.add(refund)
    session.flush()
    return refund, True


def record_refund_done(session: Session, refund: Refund, *, unique_trans_id: str | None) -> None:
    """Book a completed refund or void: ledger, deposit balance, outbox."""
    if refund.status == RefundStatus.DONE:
        return
    invoice = lock_invoice(session, refund.invoice_id) if refund.invoice_id is not None else None  # before the payment, as a charge locks them
    payment = lock_payment(session, refund.payment_id)
    refund.status = RefundStatus.DONE
    refund.gravity_unique_trans_id = unique_trans_id
    session.add(refund)
    if refund.kind == "void" and payment.refunded_cents == payment.approved_cents:
        payment.status = PaymentStatus.VOIDED
        session.add(payment)
    if refund.deposit_id is not None:
        deposit = session.exec(select(Deposit).where(Deposit.id == refund.deposit_id).with_for_update()).one()
        if deposit.remaining_cents == 0:
            deposit.status = DepositStatus.REFUNDED
            session.add(deposit)
    post(
        session,
        reference=refund_done_reference(refund.external_transaction_id),
        kind=f"{refund.kind}_done",
        location_id=payment.location_id,
        client_id=payment.client_id,
        invoice_id=payment.invoice_id,
        payment_id=payment.id,
        entries=[
            (Account.CLIENT_CREDIT, refund.credit_cents),
            (Account.REFUNDS, refund.amount_cents - refund.credit_cents),
            (Account.GATEWAY_CLEARING, -refund.amount_cents),
        ],
    )
    if invoice is not None and payment.purpose == "invoice":
        give_back_unearned(
            session,
            invoice,
            refund.amount_cents - refund.credit_cents,
            source_reference=refund_done_reference(refund.external_transaction_id),
            against=Account.REFUNDS,
            memo=f"{refund.kind} {refund.id}: the part not yet earned comes off deferred revenue",
        )
    emit(
        session,
        type="refund.done",
        stream=event_stream(payment.subscription_id, payment.client_id),
        payload={"refund_id": refund.id, "payment_id": payment.id, "kind": refund.kind, "amount_cents": refund.amount_cents},
        dedupe_key=refund_done_event_key(refund.id),
    )
    session.flush()


def record_refund_failed(session: Session, refund: Refund, *, message: str) -> None:
    """Release the reservation of a refund Gravity refused."""
    if refund.status != RefundStatus.PENDING:
        return
    payment = lock_payment(session, refund.payment_id)
    payment.refunded_cents -= refund.amount_cents
    if refund.deposit_id is not None and refund.credit_cents:
        deposit = session.exec(select(Deposit).where(Deposit.id == refund.deposit_id).with_for_update()).one()
        deposit.remaining_cents += refund.credit_cents
        deposit.status = DepositStatus.HELD  # credit that could not go back to the card stays the client's to spend
        session.add(deposit)
    refund.status = RefundStatus.FAILED
    refund.reason = f"{refund.reason} (failed: {message})".strip()
    session.add(payment)
    session.add(refund)
    session.flush()


def unapply_from_invoice(session: Session, refund: Refund) -> int:
    """Take a completed give-back off its invoice's paid amount (the sale should never have counted).

    Used when a payment is compensated because its invoice is cancelled, or when a terminal approval
    came after we gave up and was voided: the refund is then not an expense but a reversal, so the
    receivable comes back (DR accounts_receivable, CR refunds) and the invoice is open again.
    Idempotent on the ledger reference. Returns the cents taken off (0 if nothing to do).
    """
    if refund.status != RefundStatus.DONE or refund.invoice_id is None:
        return 0
    payment = session.get(Payment, refund.payment_id)
    if payment is None or payment.purpose != "invoice":
        return 0
    reference = refund_unapplied_reference(refund.external_transaction_id)
    if posted(session, reference) is not None:
        return 0
    invoice = lock_invoice(session, refund.invoice_id)
    assert invoice is not None
    # The part drawn on client credit never paid the invoice (it was excess): only the rest comes off.
    amount = min(refund.amount_cents - refund.credit_cents, invoice.paid_cents)
    if amount <= 0 or invoice.status == InvoiceStatus.VOID:
        return 0
    restore_unearned(session, invoice, source_reference=refund_done_reference(refund.external_transaction_id))
    post_for_invoice(
        session,
        invoice,
        reference=reference,
        kind="payment_unapplied",
        payment_id=payment.id,
        entries=[(Account.RECEIVABLE, amount), (Account.REFUNDS, -amount)],
    )
    reduce_paid(session, invoice, amount)
    return amount


def lock_refund(session: Session, refund_id: str) -> Refund:
    """A refund row, locked until commit: what recording its answer changes."""
    return session.exec(select(Refund).where(Refund.id == refund_id).with_for_update()).one()
