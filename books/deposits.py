"""Deposits: prepayments that become client credit, their payment attempts and what is left of
them to give back.

The approved amount becomes a `Deposit` row (client credit) in the same transaction as the ledger
posting, and `books.credit.apply_client_credit` spends it, oldest first, on the client's next invoices.
"""

from __future__ import annotations

import pendulum
from sqlmodel import Session, select

from books.attempts import find_attempt
from books.cards import card_expired_on, recurring_not_allowed
from foundation.contracts import DepositOutcome
from foundation.ids import client_stream, deposit_id_for_payment, deposit_received_event_key, payment_id_for
from foundation.statuses import DepositStatus, PaymentResult, PaymentStatus
from models.billing import Deposit, Payment
from models.clinic import Client, Location, SavedCard
from models.outbox import emit


class DepositRefused(ValueError):
    """A deposit or deposit refund that cannot be made; nothing was written or sent."""


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
    emit(
        session,
        type="deposit.received",
        stream=client_stream(payment.client_id),
        payload={"deposit_id": deposit.id, "payment_id": payment.id, "amount_cents": deposit.amount_cents},
        dedupe_key=deposit_received_event_key(deposit.id),
    )
    session.flush()
    return deposit


def card_deposit_refusal(session: Session, *, client_id: str, card_id: str, amount_cents: int) -> str | None:
    """Why a deposit cannot be charged to this card now (None: it can); checked by the service layer
    before the workflow starts and again just before the payment row is written."""
    client = session.get(Client, client_id)
    if client is None:
        return f"unknown client {client_id}"
    if amount_cents <= 0:
        return "a deposit needs an amount greater than zero"
    card = session.get(SavedCard, card_id)
    if card is None or card.client_id != client_id:
        return f"unknown card {card_id} for client {client_id}"
    if card.disabled:
        return f"card {card_id} is disabled"
    location = session.get(Location, client.location_id)
    assert location is not None
    if not location.allow_recurring_gravity:
        return recurring_not_allowed(location.id)
    today = pendulum.now(location.timezone).date()
    if card_expired_on(card.exp_month, card.exp_year, today):
        return f"card {card_id} expired {card.exp_month:02d}/{card.exp_year}"
    return None


def refundable_deposit(session: Session, deposit_id: str) -> tuple[str, int]:
    """(payment id, cents) of what is left of a deposit to give back to its card; raises
    `DepositRefused` when there is nothing (or it was no card payment)."""
    deposit = session.get(Deposit, deposit_id)
    if deposit is None:
        raise DepositRefused(f"unknown deposit {deposit_id}")
    if deposit.payment_id is None:
        raise DepositRefused(f"deposit {deposit_id} was not paid by card (it is a credit note); nothing to refund to a card")
    payment = session.get(Payment, deposit.payment_id)
    assert payment is not None
    refundable = payment.approved_cents - payment.refunded_cents if payment.status == PaymentStatus.APPROVED else 0
    amount = min(deposit.remaining_cents, refundable)
    if amount <= 0:
        raise DepositRefused(f"deposit {deposit_id} has no unused credit left to refund")
    return payment.id, amount


def deposit_outcome(session: Session, payment: Payment) -> DepositOutcome:
    """A deposit payment's answer as the books hold it."""
    deposit = session.exec(select(Deposit).where(Deposit.payment_id == payment.id)).first()
    if payment.status == PaymentStatus.APPROVED:
        status: str = PaymentResult.APPROVED if payment.approved_cents >= payment.amount_cents else PaymentResult.PARTIAL
    else:
        status = payment.status
    return DepositOutcome(payment.id, status, payment.approved_cents, deposit.id if deposit else None, payment.result_message or "")
