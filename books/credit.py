"""Client credit (deposits, overpayments, credit notes) spent on invoices and given back to them.

Deposits are locked (FOR UPDATE) before they are spent or returned, so two invoices never spend
the same credit and credit is never both spent and refunded.
"""

from __future__ import annotations

from sqlmodel import Session, select

from books.attempts import lock_invoice
from books.balances import add_paid, open_balance, reduce_paid
from books.ledger import post_for_invoice, posted
from foundation.ids import credit_applied_reference, credit_returned_reference
from foundation.statuses import DepositStatus
from models.billing import CreditApplication, Deposit, Invoice, Payment
from models.ledger import Account


def apply_client_credit(session: Session, invoice: Invoice) -> int:
    """Apply the client's held deposits to the invoice, oldest first; returns cents applied."""
    applied_total = 0
    deposits = session.exec(
        select(Deposit)
        .where(Deposit.client_id == invoice.client_id, Deposit.status == DepositStatus.HELD, Deposit.remaining_cents > 0)
        .order_by(Deposit.created_at, Deposit.id)
        .with_for_update()
    ).all()
    for deposit in deposits:
        need = open_balance(invoice)
        if need == 0:
            break
        amount = min(need, deposit.remaining_cents)
        deposit.remaining_cents -= amount
        if deposit.remaining_cents == 0:
            deposit.status = DepositStatus.USED
        application = CreditApplication(deposit_id=deposit.id, invoice_id=invoice.id, amount_cents=amount)
        session.add(application)
        session.flush()
        assert application.id is not None
        post_for_invoice(
            session,
            invoice,
            reference=credit_applied_reference(application.id),
            kind="credit_applied",
            entries=[(Account.CLIENT_CREDIT, amount), (Account.RECEIVABLE, -amount)],
        )
        add_paid(session, invoice, amount)
        applied_total += amount
    return applied_total


def credit_returned(session: Session, application_id: int) -> bool:
    """Whether an applied credit went back to its deposit already."""
    return posted(session, credit_returned_reference(application_id)) is not None


def return_credit_application(session: Session, application_id: int) -> int:
    """Give an applied credit back to its deposit (the invoice is being cancelled); returns cents.

    Idempotent on the ledger reference, so a retried activity never returns the credit twice.
    """
    application = session.get(CreditApplication, application_id)
    if application is None or credit_returned(session, application_id):
        return 0
    invoice = lock_invoice(session, application.invoice_id)
    deposit = session.exec(select(Deposit).where(Deposit.id == application.deposit_id).with_for_update()).one()
    assert invoice is not None
    deposit.remaining_cents += application.amount_cents
    deposit.status = DepositStatus.HELD
    session.add(deposit)
    post_for_invoice(
        session,
        invoice,
        reference=credit_returned_reference(application_id),
        kind="credit_returned",
        entries=[(Account.RECEIVABLE, application.amount_cents), (Account.CLIENT_CREDIT, -application.amount_cents)],
    )
    reduce_paid(session, invoice, application.amount_cents)
    return application.amount_cents


def credit_of(session: Session, payment: Payment, *, lock: bool = False) -> Deposit | None:
    """The client credit this payment's money became (its deposit, or its approval's excess)."""
    query = select(Deposit).where(Deposit.payment_id == payment.id)
    return session.exec(query.with_for_update() if lock else query).first()
