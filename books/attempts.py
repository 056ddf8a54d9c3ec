"""Payment attempts and the per-invoice arbiter.

Every path that can move money on an invoice locks the invoice row (`lock_invoice`) and reserves
what it may collect (`collectable_cents`) before it sends, so approved plus pending never exceeds
the total. An attempt's row is written before anything is sent (UNIQUE attempt key), found again
by a retry (`find_attempt`), and ended as approved (`books.approvals`), declined or closed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from books.balances import open_balance
from foundation.ids import payment_id_for
from foundation.statuses import PaymentStatus
from models.billing import Invoice, Payment
from models.columns import utcnow

# The statements a charge runs are built once, with bound parameters, so that SQLAlchemy neither
# builds them nor computes their cache keys again on every charge, the engine's hottest path.
_LOCK_INVOICE = select(Invoice).where(Invoice.id == bindparam("invoice_id")).with_for_update()
_LOCK_PAYMENT_AND_INVOICE = (
    select(Payment, Invoice).join(Invoice, Invoice.id == Payment.invoice_id).where(Payment.id == bindparam("payment_id")).with_for_update()
)
_LOCK_PAYMENT = select(Payment).where(Payment.id == bindparam("payment_id")).with_for_update()
_FIND_ATTEMPT = select(Payment).where(Payment.attempt_key == bindparam("attempt_key"))
_RESERVED = select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
    Payment.invoice_id == bindparam("invoice_id"), Payment.status == PaymentStatus.PENDING, Payment.id != bindparam("besides")
)


def lock_invoice(session: Session, invoice_id: str) -> Invoice | None:
    """The invoice row, locked until commit: balances change under this lock only."""
    return session.exec(_LOCK_INVOICE, params={"invoice_id": invoice_id}).first()


def reserved_cents(session: Session, invoice_id: str, *, besides: str = "") -> int:
    """What the invoice's pending attempts (all but `besides`) may still collect: held for them
    until each ends, so approved plus pending never exceeds the invoice's total."""
    return int(session.exec(_RESERVED, params={"invoice_id": invoice_id, "besides": besides}).one())


def collectable_cents(session: Session, invoice: Invoice, *, besides: str = "") -> int:
    """What a new collector may ask for now: the open balance less every other pending attempt, and
    nothing once a cancellation has started. Call under the invoice's lock (`lock_invoice`): that lock is the invoice's one arbiter."""
    balance = open_balance(invoice)
    if balance == 0 or invoice.cancel_requested_at is not None:
        return 0
    return max(0, balance - reserved_cents(session, invoice.id, besides=besides))


def lock_payment_and_invoice(session: Session, payment_id: str) -> tuple[Payment, Invoice]:
    """A payment of an invoice and that invoice, both locked until commit, in one SELECT: what
    recording a charge's answer changes."""
    payment, invoice = session.exec(_LOCK_PAYMENT_AND_INVOICE, params={"payment_id": payment_id}).one()
    return payment, invoice


def lock_payment(session: Session, payment_id: str) -> Payment:
    """A payment row (of an invoice or not), locked until commit."""
    return session.exec(_LOCK_PAYMENT, params={"payment_id": payment_id}).one()


def find_attempt(session: Session, attempt_key: str) -> Payment | None:
    """The payment row of an attempt, if an earlier try wrote it."""
    return session.exec(_FIND_ATTEMPT, params={"attempt_key": attempt_key}).first()


def new_attempt(
    session: Session,
    *,
    invoice: Invoice,
    attempt_key: str,
    external_transaction_id: str,
    method: str,
    amount_cents: int,
    attempt: int,
    card_id: str | None,
    attempted_at: datetime | None = None,
) -> Payment:
    """Write the payment row of an attempt the caller has just found absent (`find_attempt`), under
    the invoice's lock; the UNIQUE attempt key refuses a second row whatever happens."""
    payment = Payment(
        id=payment_id_for(external_transaction_id),
        external_transaction_id=external_transaction_id,
        attempt_key=attempt_key,
        invoice_id=invoice.id,
        client_id=invoice.client_id,
        location_id=invoice.location_id,
        subscription_id=invoice.subscription_id,
        card_id=card_id,
        method=method,
        attempt=attempt,
        status=PaymentStatus.PENDING,
        amount_cents=amount_cents,
        attempted_at=attempted_at,
    )
    session.add(payment)
    session.flush()
    return payment


def record_declined(session: Session, payment: Payment, *, reason: str | None, decline_class: str | None, message: str | None) -> None:
    """Book a decline: the attempt is final and holds nothing of the invoice any more."""
    payment.status = PaymentStatus.DECLINED
    payment.decline_reason = reason
    payment.decline_class = decline_class
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()


def close_attempt(session: Session, payment: Payment, *, status: str, message: str) -> None:
    """End an attempt that moved no money: "failed" (cancelled, refused) or "unknown" (manual review)."""
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
        return
    payment.status = status
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
