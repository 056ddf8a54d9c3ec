"""Booking what the gateway answered on a sale: an approval (the payment row, the ledger, the
invoice's balance, client credit for whatever the invoice no longer needed) or a decline.

Nothing here refuses a real approval (design principle 11): an approval on an invoice already paid
or void is booked, and its excess is held as client credit to be given back or kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session

from books.attempts import lock_invoice, lock_payment_and_invoice, record_declined
from books.balances import add_paid, open_balance
from books.charges import outcome_from_rows
from books.ledger import post, post_for_invoice
from foundation.contracts import ChargeOutcome
from foundation.ids import (
    card_disabled_event_key,
    event_stream,
    overpayment_deposit_id,
    payment_approved_reference,
    payment_decline_unclassified_event_key,
    payment_failed_event_key,
    payment_overpaid_event_key,
    payment_succeeded_event_key,
)
from foundation.statuses import DepositStatus, PaymentResult, PaymentStatus
from models.billing import Deposit, Invoice, Payment
from models.clinic import Location, SavedCard
from models.columns import utcnow
from models.ledger import Account
from models.outbox import emit


class GatewayAnswer(Protocol):
    """What booking reads of a gateway's answer, whichever side of the Temporal boundary carries it
    (Gravity's `TransactionResult` in an activity, the workflow's `GatewayResult`)."""

    @property
    def outcome(self) -> str: ...
    @property
    def approved_cents(self) -> int: ...
    @property
    def amount_stated(self) -> bool: ...
    @property
    def tip_cents(self) -> int: ...
    @property
    def surcharge_cents(self) -> int: ...
    @property
    def unique_trans_id(self) -> str | None: ...
    @property
    def masked_account(self) -> str | None: ...
    @property
    def card_brand(self) -> str | None: ...
    @property
    def result_message(self) -> str: ...


class UnstatedPartialApproval(ValueError):
    """A partial approval that did not say how much it took: booking it would be a guess, so it is
    an incident for a person (the activities raise it as a non-retryable error)."""


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


def approved_cents_of(answer: GatewayAnswer, payment: Payment) -> int:
    """What the approval took. A full approval that stated no amount took what was asked; a partial
    one that stated none cannot be booked by guessing."""
    if answer.amount_stated:
        return answer.approved_cents
    if str(answer.outcome) == PaymentResult.PARTIAL:
        raise UnstatedPartialApproval(f"Gravity approved part of {payment.external_transaction_id} without saying how much")
    return payment.amount_cents


def book_approval(session: Session, payment: Payment, answer: GatewayAnswer, *, facts: Mapping[str, object], invoice: Invoice | None = None) -> Booking:
    """`record_approved` with every fact the gateway reported (tip, surcharge, the whole answer)."""
    return record_approved(
        session,
        payment,
        invoice=invoice,
        approved_cents=approved_cents_of(answer, payment),
        tip_cents=answer.tip_cents,
        surcharge_cents=answer.surcharge_cents,
        facts=dict(facts) or None,
        unique_trans_id=answer.unique_trans_id,
        masked_number=answer.masked_account,
        brand=answer.card_brand,
        message=answer.result_message,
    )


# Statuses only a booked approval reaches: an answer repeated on such a payment books nothing.
BOOKED = (PaymentStatus.APPROVED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED)


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
    if payment.status in BOOKED:
        return Booking()  # booked before (and perhaps given back since): the same answer again
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
        post(
            session,
            reference=reference,
            kind="payment_approved",
            location_id=payment.location_id,
            client_id=payment.client_id,
            payment_id=payment.id,
            entries=[(Account.GATEWAY_CLEARING, approved_cents), (Account.CLIENT_CREDIT, -approved_cents)],
        )
        return Booking()
    if invoice is None or invoice.id != payment.invoice_id:
        invoice = lock_invoice(session, payment.invoice_id)
    assert invoice is not None
    split = split_approval(approved_cents, tip_cents=tip_cents, surcharge_cents=surcharge_cents, open_balance_cents=open_balance(invoice))
    post_for_invoice(
        session,
        invoice,
        reference=reference,
        kind="payment_approved",
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
        add_paid(session, invoice, split.applied)
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
    emit(
        session,
        type="payment.overpaid",
        stream=stream,
        payload={
            "payment_id": payment.id,
            "invoice_id": invoice.id,
            "invoice_status": invoice.status,
            "excess_cents": excess,
            "deposit_id": deposit.id,
            "policy": "keep_as_credit" if keep else "give_back",
        },
        dedupe_key=payment_overpaid_event_key(payment.id),
    )
    session.flush()
    return deposit


@dataclass(frozen=True)
class Decline:
    """A declined sale as the books keep it: the stored reason and class, the gateway's message,
    whether no issuer will approve the card again (`hard`) and whether the decline table knew the text."""

    reason: str | None
    decline_class: str | None
    message: str
    hard: bool = False
    known: bool = True


def record_card_approval(
    session: Session, payment_id: str, answer: GatewayAnswer, *, facts: Mapping[str, object], stream: str
) -> tuple[ChargeOutcome, Booking]:
    """Book a card-on-file sale's approval under the invoice's lock, with its `payment.succeeded` event."""
    payment, invoice = lock_payment_and_invoice(session, payment_id)
    booking = book_approval(session, payment, answer, facts=facts, invoice=invoice)
    emit(
        session,
        type="payment.succeeded",
        stream=stream,
        payload={"invoice_id": payment.invoice_id, "amount_cents": payment.approved_cents, "attempt": payment.attempt},
        dedupe_key=payment_succeeded_event_key(payment.id),
    )
    return outcome_from_rows(invoice, payment), booking


def record_card_decline(session: Session, payment_id: str, decline: Decline, *, stream: str) -> ChargeOutcome:
    """Book a card-on-file sale's decline, with its `payment.failed` event. A card no issuer will
    approve again is disabled (never reattempted: no new cycle charges it), and a decline text in no
    table row is reported so the table can learn it."""
    payment, invoice = lock_payment_and_invoice(session, payment_id)
    record_declined(session, payment, reason=decline.reason, decline_class=decline.decline_class, message=decline.message)
    if decline.hard and payment.card_id is not None:
        card = session.get(SavedCard, payment.card_id)
        if card is not None and not card.disabled:
            card.disabled = True
            session.add(card)
            emit(
                session,
                type="card.disabled",
                stream=stream,
                payload={"card_id": card.id, "masked_number": card.masked_number, "reason": decline.reason, "payment_id": payment.id},
                dedupe_key=card_disabled_event_key(card.id, payment.id),
            )
    if not decline.known:
        emit(
            session,
            type="payment.decline_unclassified",
            stream=stream,
            payload={"payment_id": payment.id, "result_message": decline.message},
            dedupe_key=payment_decline_unclassified_event_key(payment.id),
        )
    emit(
        session,
        type="payment.failed",
        stream=stream,
        payload={"invoice_id": payment.invoice_id, "reason": decline.reason, "class": decline.decline_class, "attempt": payment.attempt},
        dedupe_key=payment_failed_event_key(payment.id),
    )
    return outcome_from_rows(invoice, payment)
