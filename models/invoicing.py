"""Invoice and payment bookkeeping: the only code that changes invoice balances and posts their
ledger transactions. Activities call these inside one database transaction each.

Every function is idempotent on a business key (cycle key, attempt key, ledger reference), so an
activity that is retried after a crash finds its own earlier work instead of doing it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from foundation.ids import (
    client_stream,
    credit_applied_reference,
    credit_returned_reference,
    cycle_invoice_number,
    cycle_key,
    deposit_id_for_payment,
    deposit_received_event_key,
    event_stream,
    invoice_id_for_cycle,
    invoice_issued_event_key,
    invoice_issued_reference,
    invoice_refunds_reclassified_reference,
    invoice_void_reference,
    invoice_voided_event_key,
    one_off_invoice_number,
    overpayment_deposit_id,
    payment_approved_reference,
    payment_id_for,
    payment_overpaid_event_key,
    subscription_stream,
)
from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus
from models.billing import CreditApplication, Deposit, Invoice, InvoiceLine, Payment
from models.clinic import Location
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
    return invoice.total_cents - invoice.paid_cents if invoice.status == InvoiceStatus.OPEN else 0


@dataclass(frozen=True)
class ApprovalSplit:
    """Where an approved amount goes: the invoice, the staff's tips, surcharge income, and what no
    invoice needed (`excess`, held as client credit until it is given back or kept)."""

    applied: int
    tip: int
    surcharge: int
    excess: int


def split_approval(approved_cents: int, *, tip_cents: int, surcharge_cents: int, open_balance_cents: int) -> ApprovalSplit:
    """Split what the gateway approved. A tip or surcharge rides with a sale that served the
    invoice; a sale that served nothing (the invoice was paid or void by then) is excess whole."""
    extras = min(tip_cents + surcharge_cents, approved_cents)
    base = approved_cents - extras
    applied = min(base, open_balance_cents)
    if applied == 0:
        return ApprovalSplit(0, 0, 0, approved_cents)
    tip = min(tip_cents, extras)
    return ApprovalSplit(applied, tip, extras - tip, base - applied)


@dataclass(frozen=True)
class Booking:
    """What booking an approval did: the invoice it paid down (locked), the cents applied to it,
    and the excess held as client credit in `deposit_id` (to be given back when `returning`)."""

    invoice: Invoice | None = None
    applied_cents: int = 0
    excess_cents: int = 0
    deposit_id: str | None = None
    returning: bool = False


# The statements a charge runs are built once, with bound parameters, so that SQLAlchemy neither
# builds them nor computes their cache keys again on every charge, the engine's hottest path.
_LOCK_INVOICE = select(Invoice).where(Invoice.id == bindparam("invoice_id")).with_for_update()
_LOCK_PAYMENT_AND_INVOICE = (
    select(Payment, Invoice).join(Invoice, Invoice.id == Payment.invoice_id).where(Payment.id == bindparam("payment_id")).with_for_update()
)
_FIND_ATTEMPT = select(Payment).where(Payment.attempt_key == bindparam("attempt_key"))
_RESERVED = select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
    Payment.invoice_id == bindparam("invoice_id"), Payment.status == PaymentStatus.PENDING, Payment.id != bindparam("besides")
)
# The VALUES come from the parameters' names (the invoice's columns).
_INSERT_CYCLE_INVOICE = insert(Invoice).on_conflict_do_nothing(index_elements=["cycle_key"]).returning(Invoice)
_INSERT_LINES = insert(InvoiceLine.__table__)


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
) -> tuple[Invoice, bool]:
    """The invoice of one subscription cycle, locked, and whether this call created it (with its
    lines and ledger posting).

    The UNIQUE `cycle_key` makes a second invoice for the same cycle impossible even if two workers
    race: the loser's INSERT does nothing and it reads (and locks) the winner's row. A row this
    transaction inserted is invisible to every other until commit, so it needs no lock of its own,
    and the INSERT returns it as an ORM object: no second read.
    """
    key = cycle_key(subscription_id, period_start)
    invoice_id = invoice_id_for_cycle(subscription_id, period_start)
    total = sum(line.amount_cents for line in lines)
    values = {
        "id": invoice_id,
        "number": cycle_invoice_number(subscription_id, cycle_index),
        "kind": "subscription",
        "client_id": client_id,
        "location_id": location_id,
        "subscription_id": subscription_id,
        "cycle_key": key,
        "period_start": period_start,
        "period_end": period_end,
        "status": InvoiceStatus.OPEN,
        "total_cents": total,
        "paid_cents": 0,
        "due_at": due_at,
    }
    inserted: Invoice | None = session.scalars(_INSERT_CYCLE_INVOICE, values).first()
    if inserted is None:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None
        return invoice, False
    _insert_lines(session, invoice_id, lines)
    _post_invoice_issued(session, invoice_id, location_id, client_id, lines)
    emit(
        session,
        type="invoice.issued",
        stream=subscription_stream(subscription_id),
        payload={"invoice_id": invoice_id, "total_cents": total, "period_start": period_start.isoformat()},
        dedupe_key=invoice_issued_event_key(invoice_id),
    )
    return inserted, True


def _insert_lines(session: Session, invoice_id: str, lines: list[LineSpec]) -> None:
    """The invoice's lines in one Core INSERT, because nothing reads them back as ORM rows and
    flushing them as ORM rows would spend the worker's CPU on objects no one uses."""
    rows = [{"invoice_id": invoice_id, "kind": line.kind, "description": line.description, "amount_cents": line.amount_cents} for line in lines]
    if rows:
        session.execute(_INSERT_LINES, rows)


def _post_invoice_issued(session: Session, invoice_id: str, location_id: str, client_id: str, lines: list[LineSpec]) -> None:
    total = sum(line.amount_cents for line in lines)
    if total == 0:
        return
    by_account: dict[Account, int] = {}
    for line in lines:
        by_account[line.revenue] = by_account.get(line.revenue, 0) + line.amount_cents
    post(
        session,
        reference=invoice_issued_reference(invoice_id),
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
        post(
            session,
            reference=credit_applied_reference(application.id),
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
        invoice.status = InvoiceStatus.PAID
        invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
    session.flush()


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


def record_approved(
    session: Session,
    payment: Payment,
    *,
    approved_cents: int,
    unique_trans_id: str | None,
    masked_number: str | None,
    brand: str | None,
    message: str | None,
    invoice: Invoice | None = None,
    tip_cents: int = 0,
    surcharge_cents: int = 0,
    facts: dict[str, Any] | None = None,
) -> Booking:
    """Book an approved (or partially approved) sale as the gateway reported it: payment row,
    ledger, invoice balance. Nothing here refuses a real approval: what the invoice no longer needs
    (it was paid or voided meanwhile) becomes client credit, given back or kept per the location's
    `overpayment_policy`. `invoice`: the payment's invoice when the caller locked it already."""
    if payment.status == PaymentStatus.APPROVED:
        return Booking()
    payment.status = PaymentStatus.APPROVED
    payment.approved_cents = approved_cents
    payment.tip_cents = tip_cents
    payment.surcharge_cents = surcharge_cents
    payment.gateway_facts = facts
    payment.gravity_unique_trans_id = unique_trans_id
    payment.masked_number = masked_number
    payment.brand = brand
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
    if approved_cents == 0:
        return Booking()
    reference = payment_approved_reference(payment.external_transaction_id)
    if payment.invoice_id is None or payment.purpose != "invoice":
        post(session, reference=reference, kind="payment_approved", location_id=payment.location_id, client_id=payment.client_id,
             payment_id=payment.id, entries=[(Account.GATEWAY_CLEARING, approved_cents), (Account.CLIENT_CREDIT, -approved_cents)])
        return Booking()
    if invoice is None or invoice.id != payment.invoice_id:
        invoice = lock_invoice(session, payment.invoice_id)
    assert invoice is not None
    split = split_approval(approved_cents, tip_cents=tip_cents, surcharge_cents=surcharge_cents, open_balance_cents=open_balance(invoice))
    post(
        session,
        reference=reference,
        kind="payment_approved",
        location_id=payment.location_id,
        client_id=payment.client_id,
        invoice_id=payment.invoice_id,
        payment_id=payment.id,
        entries=[
            (Account.GATEWAY_CLEARING, approved_cents),
            (Account.RECEIVABLE, -split.applied),
            (Account.TIPS_PAYABLE, -split.tip),
            (Account.FEE_REVENUE, -split.surcharge),
            (Account.CLIENT_CREDIT, -split.excess),
        ],
    )
    if split.applied:
        _add_paid(session, invoice, split.applied)
    if split.excess == 0:
        return Booking(invoice, split.applied)
    deposit = _hold_excess(session, payment, invoice, split.excess)
    return Booking(invoice, split.applied, split.excess, deposit.id, returning=deposit.status == DepositStatus.RETURNING)


def _hold_excess(session: Session, payment: Payment, invoice: Invoice, excess: int) -> Deposit:
    """The credit row of an approval's excess: spendable ("held") where the location keeps
    overpayments as credit, else "returning" (not spendable) until it is given back to the card."""
    location = session.get(Location, payment.location_id)
    keep = location is not None and location.overpayment_policy == "keep_as_credit"
    deposit = Deposit(
        id=overpayment_deposit_id(payment.external_transaction_id),
        client_id=payment.client_id,
        location_id=payment.location_id,
        payment_id=payment.id,
        amount_cents=excess,
        remaining_cents=excess,
        status=DepositStatus.HELD if keep else DepositStatus.RETURNING,
        source="overpayment",
    )
    session.add(deposit)
    stream = event_stream(invoice.subscription_id, payment.client_id)
    emit(session, type="payment.overpaid", stream=stream,
         payload={"payment_id": payment.id, "invoice_id": invoice.id, "invoice_status": invoice.status, "excess_cents": excess,
                  "deposit_id": deposit.id, "policy": "keep_as_credit" if keep else "give_back"},
         dedupe_key=payment_overpaid_event_key(payment.id))
    session.flush()
    return deposit


def record_declined(session: Session, payment: Payment, *, reason: str | None, decline_class: str | None, message: str | None) -> None:
    payment.status = PaymentStatus.DECLINED
    payment.decline_reason = reason
    payment.decline_class = decline_class
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()


# ----------------------------------------------------------------- counter invoices, deposits, cancellation
def create_counter_invoice(
    session: Session,
    *,
    invoice_id: str,
    client_id: str,
    location_id: str,
    lines: list[LineSpec],
    kind: str = "counter",
    subscription_id: str | None = None,
) -> Invoice:
    """A one-off invoice (front desk, or a subscription's settlement or proration) with its lines
    and its ledger posting (receivable against revenue)."""
    total = sum(line.amount_cents for line in lines)
    invoice = Invoice(
        id=invoice_id,
        number=one_off_invoice_number(kind, invoice_id),
        kind=kind,
        client_id=client_id,
        location_id=location_id,
        subscription_id=subscription_id,
        status=InvoiceStatus.OPEN,
        total_cents=total,
        paid_cents=0,
    )
    session.add(invoice)
    session.flush()
    _insert_lines(session, invoice_id, lines)
    _post_invoice_issued(session, invoice_id, location_id, client_id, lines)
    stream = event_stream(subscription_id, client_id)
    emit(session, type="invoice.issued", stream=stream, payload={"invoice_id": invoice_id, "total_cents": total},
         dedupe_key=invoice_issued_event_key(invoice_id))
    session.flush()
    return invoice


def start_deposit_attempt(
    session: Session,
    *,
    client_id: str,
    location_id: str,
    attempt_key: str,
    external_transaction_id: str,
    method: str,
    amount_cents: int,
    card_id: str | None,
) -> tuple[Payment, bool]:
    """The payment row of a prepayment attempt that belongs to no invoice (purpose "deposit"):
    (row, True) when this call created it."""
    existing = find_attempt(session, attempt_key)
    if existing is not None:
        return existing, False
    payment = Payment(
        id=payment_id_for(external_transaction_id),
        external_transaction_id=external_transaction_id,
        attempt_key=attempt_key,
        invoice_id=None,
        client_id=client_id,
        location_id=location_id,
        card_id=card_id,
        method=method,
        purpose="deposit",
        attempt=1,
        status=PaymentStatus.PENDING,
        amount_cents=amount_cents,
    )
    session.add(payment)
    session.flush()
    return payment, True


def record_deposit(session: Session, payment: Payment) -> Deposit | None:
    """The client credit an approved deposit payment created (once; its id derives from the payment).

    `record_approved` already posted DR gateway_clearing / CR client_credit; this is the sub-ledger
    row `apply_client_credit` spends oldest first.
    """
    if payment.purpose != "deposit" or payment.status != PaymentStatus.APPROVED or payment.approved_cents == 0:
        return None
    existing = session.exec(select(Deposit).where(Deposit.payment_id == payment.id)).first()
    if existing is not None:
        return existing
    deposit = Deposit(
        id=deposit_id_for_payment(payment.external_transaction_id),
        client_id=payment.client_id,
        location_id=payment.location_id,
        payment_id=payment.id,
        amount_cents=payment.approved_cents,
        remaining_cents=payment.approved_cents,
        status=DepositStatus.HELD,
    )
    session.add(deposit)
    emit(session, type="deposit.received", stream=client_stream(payment.client_id),
         payload={"deposit_id": deposit.id, "payment_id": payment.id, "amount_cents": deposit.amount_cents},
         dedupe_key=deposit_received_event_key(deposit.id))
    session.flush()
    return deposit


def close_attempt(session: Session, payment: Payment, *, status: str, message: str) -> None:
    """End an attempt that moved no money: "failed" (cancelled, refused) or "unknown" (manual review)."""
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
        return
    payment.status = status
    payment.result_message = message
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()


def _reduce_paid(session: Session, invoice: Invoice, amount: int) -> None:
    invoice.paid_cents -= amount
    if invoice.status == InvoiceStatus.PAID and invoice.paid_cents < invoice.total_cents:
        invoice.status = InvoiceStatus.OPEN
    invoice.updated_at = utcnow()
    session.add(invoice)
    session.flush()


def return_credit_application(session: Session, application_id: int) -> int:
    """Give an applied credit back to its deposit (the invoice is being cancelled); returns cents.

    Idempotent on the ledger reference, so a retried activity never returns the credit twice.
    """
    from models.ledger import LedgerTransaction

    application = session.get(CreditApplication, application_id)
    if application is None:
        return 0
    reference = credit_returned_reference(application_id)
    if session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == reference)).first() is not None:
        return 0
    invoice = lock_invoice(session, application.invoice_id)
    deposit = session.exec(select(Deposit).where(Deposit.id == application.deposit_id).with_for_update()).one()
    assert invoice is not None
    deposit.remaining_cents += application.amount_cents
    deposit.status = DepositStatus.HELD
    session.add(deposit)
    post(
        session,
        reference=reference,
        kind="credit_returned",
        location_id=invoice.location_id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        entries=[(Account.RECEIVABLE, application.amount_cents), (Account.CLIENT_CREDIT, -application.amount_cents)],
    )
    _reduce_paid(session, invoice, application.amount_cents)
    return application.amount_cents


def split_pro_rata(amount_cents: int, weights: dict[Account, int]) -> dict[Account, int]:
    """`amount_cents` shared across accounts in proportion to `weights`, to the cent (largest
    remainders get the leftover cents, ties by account name, so the split is deterministic)."""
    total = sum(weights.values())
    if total <= 0 or amount_cents == 0:
        return {}
    shares = {account: amount_cents * weight // total for account, weight in weights.items()}
    leftover = amount_cents - sum(shares.values())
    by_remainder = sorted(weights, key=lambda a: (-(amount_cents * weights[a] % total), str(a)))
    for account in by_remainder[:leftover]:
        shares[account] += 1
    return {account: cents for account, cents in shares.items() if cents}


def write_off_unpaid(session: Session, invoice: Invoice, *, reason: str) -> int:
    """Void a partly paid invoice: what was paid stays earned, and the unpaid remainder's revenue is
    reversed across the invoice's revenue accounts in proportion to what it billed to each (an
    enrollment fee's share comes off fee revenue, not plan revenue). Returns the cents written off."""
    from models.ledger import LedgerEntry, LedgerTransaction

    unpaid = open_balance(invoice)
    issued = session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == invoice_issued_reference(invoice.id))).first()
    revenue: dict[Account, int] = {}
    if issued is not None:
        for entry in session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id == issued.id)).all():
            if entry.account != Account.RECEIVABLE:
                revenue[Account(entry.account)] = revenue.get(Account(entry.account), 0) - entry.amount_cents
    shares = split_pro_rata(unpaid, revenue) or {Account.PLAN_REVENUE: unpaid}
    invoice.status = InvoiceStatus.VOID
    invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
    post(
        session,
        reference=invoice_void_reference(invoice.id),
        kind="invoice_void",
        location_id=invoice.location_id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        memo=f"{reason}: unpaid remainder written off",
        entries=[*((account, cents) for account, cents in shares.items()), (Account.RECEIVABLE, -unpaid)],
    )
    session.flush()
    return unpaid


def credit_returned(session: Session, application_id: int) -> bool:
    from models.ledger import LedgerTransaction

    reference = credit_returned_reference(application_id)
    return session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == reference)).first() is not None


def void_invoice(session: Session, invoice: Invoice, *, reason: str) -> None:
    """Void a fully compensated invoice: reverse its issue posting so it leaves no revenue behind.

    What is still counted as paid at this point was refunded earlier (already an expense in
    `refunds`); it is reclassified against the receivable first, then the issue posting is reversed
    entry by entry. Refuses while any payment still holds money or any applied credit is unreturned.
    """
    from models.ledger import LedgerEntry, LedgerTransaction

    if invoice.status == InvoiceStatus.VOID:
        return
    holding = session.exec(
        select(Payment).where(Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.APPROVED, Payment.approved_cents > Payment.refunded_cents)
    ).first()
    if holding is not None:
        raise ValueError(f"payment {holding.id} still holds money on invoice {invoice.id}")
    from models.billing import Refund

    unsettled = session.exec(select(Refund).where(Refund.invoice_id == invoice.id, Refund.status.in_((RefundStatus.PENDING, RefundStatus.UNKNOWN)))).first()  # type: ignore[attr-defined]
    if unsettled is not None:
        raise ValueError(f"refund {unsettled.id} on invoice {invoice.id} is not finished")
    for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id == invoice.id)).all():
        assert application.id is not None
        if not credit_returned(session, application.id):
            raise ValueError(f"credit application {application.id} on invoice {invoice.id} was not returned")
    if invoice.paid_cents > 0:
        leftover = invoice.paid_cents
        post(
            session,
            reference=invoice_refunds_reclassified_reference(invoice.id),
            kind="invoice_void_refunds",
            location_id=invoice.location_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            entries=[(Account.RECEIVABLE, leftover), (Account.REFUNDS, -leftover)],
        )
        _reduce_paid(session, invoice, leftover)
    issued = session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == invoice_issued_reference(invoice.id))).first()
    if issued is not None:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id == issued.id)).all()
        post(
            session,
            reference=invoice_void_reference(invoice.id),
            kind="invoice_void",
            location_id=invoice.location_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            memo=reason,
            entries=[(Account(entry.account), -entry.amount_cents) for entry in entries],
        )
    invoice.status = InvoiceStatus.VOID
    invoice.next_attempt_at = None
    invoice.updated_at = utcnow()
    session.add(invoice)
    stream = event_stream(invoice.subscription_id, invoice.client_id)
    emit(session, type="invoice.voided", stream=stream, payload={"invoice_id": invoice.id, "reason": reason},
         dedupe_key=invoice_voided_event_key(invoice.id))
    session.flush()
