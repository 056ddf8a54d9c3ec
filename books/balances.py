"""An invoice's balance: what is still owed, and the one place its paid amount moves."""

from __future__ import annotations

from sqlmodel import Session

from foundation.statuses import InvoiceStatus
from models.billing import Invoice
from models.columns import utcnow


def open_balance(invoice: Invoice) -> int:
    """What the client still owes on the invoice (nothing once it is paid or void)."""
    return invoice.total_cents - invoice.paid_cents if invoice.status == InvoiceStatus.OPEN else 0


def add_paid(session: Session, invoice: Invoice, amount: int) -> None:
    """Count `amount` more as paid; the invoice is paid (and stops retrying) once it is covered."""
    invoice.paid_cents += amount
    if invoice.paid_cents >= invoice.total_cents:
        invoice.status = InvoiceStatus.PAID
        invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
    session.flush()


def reduce_paid(session: Session, invoice: Invoice, amount: int) -> None:
    """Count `amount` less as paid (given back or credit returned); a paid invoice opens again."""
    invoice.paid_cents -= amount
    if invoice.status == InvoiceStatus.PAID and invoice.paid_cents < invoice.total_cents:
        invoice.status = InvoiceStatus.OPEN
    invoice.updated_at = utcnow()
    session.add(invoice)
    session.flush()
