"""Invoice and payment bookkeeping: the only code that changes invoice balances and posts their
ledger transactions. Activities call these inside one database transaction each.

Every function is idempotent on a business key (cycle key, attempt key, ledger reference), so an
activity that is retried after a crash finds its own earlier work instead of doing it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from foundation.ids import cycle_key, invoice_id_for_cycle
from models.billing import CreditApplication, Deposit, Invoice, InvoiceLine, Payment
from models.columns import utcnow
from models.ledger import Account, post
from models.outbox import emit


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    amount_cents: int
    revenue: Account = Account.PLAN_REVENUE


def open_balance(invoice: Invoice) -> int:
    return invoice.total_cents - invoice.paid_cents if invoice.status == "open" else 0


def lock_invoice(session: Session, invoice_id: str) -> Invoice | None:
    """The invoice row, locked until commit: balances change under this lock only."""
    return session.exec(select(Invoice).where(Invoice.id == invoice_id).with_for_update()).first()


def ensure_cycle_invoice(
    session: Session,
    *,
    subscription_id: str,
    client_id: str,
    location_id: str,
    cycle_index: int,
    period_start: date,
    period_end: date,
    due_at: datetime,
    lines: list[LineSpec],
) -> Invoice:
    """The invoice of one subscription cycle, created with its lines and ledger posting on first call.

    The UNIQUE `cycle_key` makes a second invoice for the same cycle impossible even if two workers
    race: the loser's INSERT does nothing and it reads the winner's row.
    """
    key = cycle_key(subscription_id, period_start)
    invoice_id = invoice_id_for_cycle(subscription_id, period_start)
    total = sum(line.amount_cents for line in lines)
    inserted = session.exec(  # type: ignore[call-overload]
        insert(Invoice)
        .values(
            id=invoice_id,
            number=f"S-{subscription_id}-{cycle_index + 1:03d}",
            kind="subscription",
            client_id=client_id,
            location_id=location_id,
            subscription_id=subscription_id,
            cycle_key=key,
            period_start=period_start,
            period_end=period_end,
            status="open",
            total_cents=total,
            paid_cents=0,
            due_at=due_at,
        )
        .on_conflict_do_nothing(index_elements=["cycle_key"])
        .returning(Invoice.id)
    ).first()
    if inserted is not None:
        for line in lines:
            session.add(InvoiceLine(invoice_id=invoice_id, kind=line.kind, description=line.description, amount_cents=line.amount_cents))
        _post_invoice_issued(session, invoice_id, location_id, client_id, lines)
        emit(
            session,
            type="invoice.issued",
            stream=f"subscription:{subscription_id}",
            payload={"invoice_id": invoice_id, "total_cents": total, "period_start": period_start.isoformat()},
            dedupe_key=f"invoice.issued:{invoice_id}",
        )
    invoice = lock_invoice(session, invoice_id)
    assert invoice is not None
    return invoice


def _post_invoice_issued(session: Session, invoice_id: str, location_id: str, client_id: str, lines: list[LineSpec]) -> None:
    total = sum(line.amount_cents for line in lines)
    if total == 0:
        return
    by_account: dict[Account, int] = {}
    for line in lines:
        by_account[line.revenue] = by_account.get(line.revenue, 0) + line.amount_cents
    post(
        session,
        reference=f"invoice:{invoice_id}:issued",
        kind="invoice_issued",
        location_id=location_id,
        client_id=client_id,
        invoice_id=invoice_id,
        entries=[(Account.RECEIVABLE, total), *[(account, -amount) for account, amount in by_account.items()]],
    )


def apply_client_credit(session: Session, invoice: Invoice) -> int:
    """Apply the client's held deposits to the invoice, oldest first; returns cents applied.

    Deposits are locked (FOR UPDATE) so two invoices never spend the same credit.
    """
    applied_total = 0
    deposits = session.exec(
        select(Deposit)
        .where(Deposit.client_id == invoice.client_id, Deposit.status == "held", Deposit.remaining_cents > 0)
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
            deposit.status = "used"
        application = CreditApplication(deposit_id=deposit.id, invoice_id=invoice.id, amount_cents=amount)
        session.add(application)
        session.flush()
        post(
            session,
            reference=f"credit_application:{application.id}",
            kind="credit_applied",
            location_id=invoice.location_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            entries=[(Account.CLIENT_CREDIT, amount), (Account.RECEIVABLE, -amount)],
        )
        _add_paid(session, invoice, amount)
        applied_total += amount
    return applied_total


def _add_paid(session: Session, invoice: Invoice, amount: int) -> None:
    invoice.paid_cents += amount
    if invoice.paid_cents >= invoice.total_cents:
        invoice.status = "paid"
        invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
    session.flush()


def start_attempt(
    session: Session,
    *,
    invoice: Invoice,
    attempt_key: str,
    external_transaction_id: str,
    method: str,
    amount_cents: int,
    attempt: int,
    card_id: str | None,
) -> tuple[Payment, bool]:
    """The payment row of one attempt: (row, True) when this call created it.

    An existing row means an earlier try of the same attempt may already have reached Gravity, so
    the caller must look the external id up before sending anything.
    """
    existing = session.exec(select(Payment).where(Payment.attempt_key == attempt_key)).first()
    if existing is not None:
        return existing, False
    payment = Payment(
        id="pay_" + external_transaction_id.replace("-", "")[:24],
        external_transaction_id=external_transaction_id,
        attempt_key=attempt_key,
        invoice_id=invoice.id,
        client_id=invoice.client_id,
        location_id=invoice.location_id,
        subscription_id=invoice.subscription_id,
        card_id=card_id,
        method=method,
        attempt=attempt,
        status="pending",
        amount_cents=amount_cents,
    )
    session.add(payment)
    session.flush()
    return payment, True


def record_approved(
    session: Session,
    payment: Payment,
    *,
    approved_cents: int,
    unique_trans_id: str | None,
    masked_number: str | None,
    brand: str | None,
    message: str | None,
) -> None:
    """Book an approved (or partially approved) sale: payment row, ledger, invoice balance."""
    if payment.status == "approved":
        return
    payment.status = "approved"
    payment.approved_cents = approved_cents
    payment.gravity_unique_trans_id = unique_trans_id
    payment.masked_number = masked_number
    payment.brand = brand
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
    if approved_cents == 0:
        return
    credit_account = Account.RECEIVABLE if payment.purpose == "invoice" else Account.CLIENT_CREDIT
    post(
        session,
        reference=f"payment:{payment.external_transaction_id}:approved",
        kind="payment_approved",
        location_id=payment.location_id,
        client_id=payment.client_id,
        invoice_id=payment.invoice_id,
        payment_id=payment.id,
        entries=[(Account.GATEWAY_CLEARING, approved_cents), (credit_account, -approved_cents)],
    )
    if payment.invoice_id is not None and payment.purpose == "invoice":
        invoice = lock_invoice(session, payment.invoice_id)
        assert invoice is not None
        _add_paid(session, invoice, approved_cents)


def record_declined(session: Session, payment: Payment, *, reason: str | None, decline_class: str | None, message: str | None) -> None:
    payment.status = "declined"
    payment.decline_reason = reason
    payment.decline_class = decline_class
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
