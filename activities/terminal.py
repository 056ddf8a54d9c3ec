"""Activities of the terminal payment workflow: validate and write the payment row, push the sale to
the device, look it up, cancel it, and book what happened.

Exactly-once: the payment row (UNIQUE attempt key and externalTransactionId) is committed before the
sale is sent; the device call carries the same id as its idempotency key, so a retried send is
replayed by Gravity, never shown twice; results are booked idempotently whether they come by
postback, by polling, or both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.incidents import unbookable_approvals
from activities.invoice_compensation import GiveBack
from activities.moment import activity_time, dated
from books.answers import Booking, book_approval
from books.attempts import close_attempt, collectable_cents, find_attempt, lock_invoice, lock_payment, new_attempt, record_declined
from books.balances import open_balance
from books.cards import recurring_not_allowed
from books.deposits import record_deposit, start_deposit_attempt
from foundation.contracts import GatewayResult, TerminalClose, TerminalOutcome, TerminalPaymentInput, TerminalPrepared, TerminalRecord
from foundation.ids import (
    card_saved_event_key,
    client_stream,
    deposit_reference,
    event_stream,
    external_id,
    late_approval_key,
    payment_failed_event_key,
    payment_late_reversed_event_key,
    payment_manual_review_event_key,
    payment_succeeded_event_key,
    sale_fingerprint,
    saved_card_id_for,
)
from foundation.statuses import InvoiceStatus, PaymentResult, PaymentStatus
from foundation.telemetry import counters
from gravity.directory import GatewayDirectory
from gravity.errors import DeviceBusy, NotFound, PermanentGravityError
from gravity.results import Outcome, TransactionResult
from models.billing import Invoice, Payment
from models.clinic import Client, Location, SavedCard, Terminal
from models.db import session_scope
from models.outbox import emit


def refused(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidCommand", non_retryable=True)


def gateway_result(result: TransactionResult) -> GatewayResult:
    """The workflow-facing view of a Gravity result (masked card data only)."""
    return GatewayResult(
        external_transaction_id=result.external_transaction_id,
        outcome=str(result.outcome.value),
        approved_cents=result.approved_cents,
        unique_trans_id=result.unique_trans_id,
        result_message=result.result_message,
        decline_reason=str(result.decline_reason.value) if result.decline_reason else None,
        decline_class=str(result.decline_class.value) if result.decline_class else None,
        masked_account=result.masked_account,
        card_brand=result.card_brand,
        expiry_mmyy=result.expiry_mmyy,
        fingerprint=result.fingerprint,
        amount_stated=result.amount_stated,
        tip_cents=result.tip_cents,
        surcharge_cents=result.surcharge_cents,
        avs_response_code=result.avs_response_code,
        avs_response_text=result.avs_response_text,
        cvv_response_code=result.cvv_response_code,
        cvv_response_text=result.cvv_response_text,
        cashier=result.cashier,
        facts=result.facts(),
    )


def invoice_refusal(session: Session, invoice: Invoice | None, invoice_id: str | None, amount_cents: int | None) -> str | None:
    """Why a terminal payment of this invoice cannot start, or None (shared with operations)."""
    if invoice is None:
        return f"unknown invoice {invoice_id}"
    if invoice.status == InvoiceStatus.VOID:
        return f"invoice {invoice.id} is void"
    if invoice.cancel_requested_at is not None:
        return f"invoice {invoice.id} is being cancelled"
    if invoice.status == InvoiceStatus.PAID or open_balance(invoice) == 0:
        return f"invoice {invoice.id} is already paid"
    balance = open_balance(invoice)
    if amount_cents is not None and amount_cents <= 0:
        return "the amount must be greater than zero"
    if amount_cents is not None and amount_cents > balance:
        return f"the amount ({amount_cents} cents) is more than the open balance ({balance} cents)"
    collectable = collectable_cents(session, invoice)
    if collectable == 0:
        return f"another payment is already in progress for the open balance of invoice {invoice.id}"
    if amount_cents is not None and amount_cents > collectable:
        return f"the amount ({amount_cents} cents) is more than the {collectable} cents of invoice {invoice.id} no other payment in progress is collecting"
    return None


def terminal_registered(session: Session, location_id: str, device_name: str) -> bool:
    """True when the location registered the device: Gravity lists every device of the merchant,
    and a merchant's other clinics must not take this location's payments."""
    found = session.exec(select(Terminal.id).where(Terminal.location_id == location_id, Terminal.device_name == device_name)).first()
    return found is not None


def request_refusal(session: Session, request: TerminalPaymentInput) -> tuple[str | None, Location | None, Invoice | None]:
    """Everything about a terminal request the database can judge (device state is Gravity's)."""
    location = session.get(Location, request.location_id)
    if location is None:
        return f"unknown location {request.location_id}", None, None
    if not terminal_registered(session, location.id, request.device_name):
        return f"unknown device {request.device_name}: location {location.id} never registered it (see billing terminals {location.id})", location, None
    if request.save_card and not location.allow_recurring_gravity:
        return f"{recurring_not_allowed(location.id)}, so a card cannot be saved", location, None
    if request.purpose == "deposit":
        client = session.get(Client, request.client_id) if request.client_id else None
        if client is None or client.location_id != location.id:
            return f"unknown client {request.client_id} at location {location.id}", location, None
        if request.amount_cents is None or request.amount_cents <= 0:
            return "a deposit needs an amount greater than zero", location, None
        return None, location, None
    if request.purpose != "invoice":
        return f"purpose must be 'invoice' or 'deposit', got {request.purpose!r}", location, None
    invoice = lock_invoice(session, request.invoice_id) if request.invoice_id else None
    reason = invoice_refusal(session, invoice, request.invoice_id, request.amount_cents)
    if reason is None and invoice is not None and invoice.location_id != location.id:
        reason = f"invoice {invoice.id} belongs to another location"
    return reason, location, invoice


@dataclass(frozen=True)
class _Sale:
    oid: str
    device: str
    external_transaction_id: str
    amount_cents: int
    reference: str
    save_card: bool


class TerminalActivities:
    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._gateways = gateways
        self._give_back = GiveBack(engine, gateways)

    # ------------------------------------------------------------------ prepare
    @activity.defn(name="prepare_terminal_payment")
    async def prepare_terminal_payment(self, request: TerminalPaymentInput) -> TerminalPrepared:
        """Validate under the invoice lock and write the pending payment row (nothing sent yet)."""
        return await asyncio.to_thread(self._prepare, request, activity_time(request.at))

    def _prepare(self, request: TerminalPaymentInput, at: datetime | None) -> TerminalPrepared:
        with session_scope(self._engine, at=at) as session:
            ext = external_id(request.attempt_key)
            existing = find_attempt(session, request.attempt_key)
            if existing is None:
                reason, location, invoice = request_refusal(session, request)
                if reason is not None:
                    return TerminalPrepared(request.payment_id, refused_reason=reason)
                assert location is not None
                if request.purpose == "deposit":
                    assert request.client_id is not None and request.amount_cents is not None
                    existing, _ = start_deposit_attempt(
                        session,
                        client_id=request.client_id,
                        location_id=location.id,
                        attempt_key=request.attempt_key,
                        external_transaction_id=ext,
                        method="terminal",
                        amount_cents=request.amount_cents,
                        card_id=None,
                    )
                else:
                    assert invoice is not None
                    amount = request.amount_cents if request.amount_cents is not None else collectable_cents(session, invoice)
                    existing = find_attempt(session, request.attempt_key) or new_attempt(
                        session,
                        invoice=invoice,
                        attempt_key=request.attempt_key,
                        external_transaction_id=ext,
                        method="terminal",
                        amount_cents=amount,
                        attempt=1,
                        card_id=None,
                    )
            if existing.id != request.payment_id:
                raise refused(f"payment id {request.payment_id} does not match attempt key {request.attempt_key}")
            return TerminalPrepared(
                payment_id=existing.id,
                external_transaction_id=existing.external_transaction_id,
                amount_cents=existing.amount_cents,
                reference=existing.invoice_id or deposit_reference(existing.id),
                subscription_id=existing.subscription_id,
            )

    # ------------------------------------------------------------------ device calls
    def _sale(self, payment_id: str, device: str, save_card: bool) -> _Sale:
        with session_scope(self._engine) as session:
            payment = session.get(Payment, payment_id)
            if payment is None:
                raise refused(f"unknown payment {payment_id}")
            location = session.get(Location, payment.location_id)
            assert location is not None
            return _Sale(
                location.gravity_oid,
                device,
                payment.external_transaction_id,
                payment.amount_cents,
                payment.invoice_id or deposit_reference(payment.id),
                save_card,
            )

    @activity.defn(name="send_to_terminal")
    async def send_to_terminal(self, request: TerminalPaymentInput) -> None:
        """Show the amount on the device. Busy/offline/unknown device: refused, nothing to retry."""
        with dated(request.at):  # a sandbox told the time dates the sale by it
            await self._send(request)

    async def _send(self, request: TerminalPaymentInput) -> None:
        sale = await asyncio.to_thread(self._sale, request.payment_id, request.device_name, request.save_card)
        gateway = self._gateways.for_oid(sale.oid)
        try:
            await gateway.start_terminal(
                device_name=sale.device,
                external_id=sale.external_transaction_id,
                amount_cents=sale.amount_cents,
                reference=sale.reference,
                save_card=sale.save_card,
            )
        except DeviceBusy as error:
            raise refused(f"device {sale.device} cannot take a payment now ({error.message.split(': ')[-1]})") from None
        except NotFound:
            raise refused(f"unknown device {sale.device}") from None
        except PermanentGravityError as error:
            raise ApplicationError(f"Gravity refused the terminal sale: {error}", type="GravityPermanent", non_retryable=True) from None

    @activity.defn(name="look_up_terminal")
    async def look_up_terminal(self, request: TerminalPaymentInput) -> GatewayResult | None:
        """Poll: the result if the customer has finished, None while Gravity does not know it."""
        sale = await asyncio.to_thread(self._sale, request.payment_id, request.device_name, False)
        found = await self._gateways.for_oid(sale.oid).lookup(sale.external_transaction_id)
        return gateway_result(found) if found is not None else None

    @activity.defn(name="cancel_on_terminal")
    async def cancel_on_terminal(self, request: TerminalPaymentInput) -> bool:
        """True if the device's prompt was cancelled (or had ended with nothing), False if the
        customer already completed it (its result must then be looked up and booked)."""
        sale = await asyncio.to_thread(self._sale, request.payment_id, request.device_name, False)
        try:
            return await self._gateways.for_oid(sale.oid).cancel_terminal(device_name=sale.device, external_id=sale.external_transaction_id)
        except NotFound:
            return True  # the device never had it (the send was refused): nothing to cancel
        except PermanentGravityError as error:
            raise ApplicationError(f"Gravity refused the cancel: {error}", type="GravityPermanent", non_retryable=True) from None

    # ------------------------------------------------------------------ booking
    @activity.defn(name="record_terminal_result")
    async def record_terminal_result(self, record: TerminalRecord) -> TerminalOutcome:
        """Book the result; a late approval is booked (money moved) and then voided or refunded."""
        with dated(record.at) as at:
            return await self._book(record, at)

    async def _book(self, record: TerminalRecord, at: datetime | None) -> TerminalOutcome:
        outcome, booking = await asyncio.to_thread(self._record, record, at)
        result = record.result
        counters().charge(outcome=result.outcome, attempt=1, channel="terminal", decline_reason=result.decline_reason, decline_class=result.decline_class)
        if record.late and outcome.status in (PaymentResult.APPROVED, PaymentResult.PARTIAL):
            given = await self._give_back.give_back(
                payment_id=record.payment_id,
                amount_cents=None,
                key=late_approval_key(record.payment_id),
                reason="approved after the counter gave up",
                unapply=True,
                at=at,
            )
            outcome = await asyncio.to_thread(self._after_late_void, record.payment_id, given.kind, at)
        elif booking.returning:
            await self._give_back.return_excess(record.payment_id, at=at)
            outcome = await asyncio.to_thread(self._outcome_now, record.payment_id)
        return outcome

    def _outcome_now(self, payment_id: str) -> TerminalOutcome:
        with session_scope(self._engine) as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            return _outcome(session, payment)

    def _record(self, record: TerminalRecord, at: datetime | None) -> tuple[TerminalOutcome, Booking]:
        result = record.result
        booking = Booking()
        with session_scope(self._engine, at=at) as session, unbookable_approvals():
            payment = lock_payment(session, record.payment_id)
            if result.external_transaction_id != payment.external_transaction_id:
                raise refused(f"result {result.external_transaction_id} is not payment {payment.id}'s")
            stream = event_stream(payment.subscription_id, payment.client_id)
            card_id = None
            deposit_id = None
            if result.outcome in (Outcome.APPROVED.value, Outcome.PARTIAL.value):
                if payment.status in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
                    payment.status = PaymentStatus.PENDING  # a late answer after manual review is still booked
                booking = book_approval(session, payment, result, facts=result.facts)
                deposit = record_deposit(session, payment)
                deposit_id = deposit.id if deposit else None
                if record.save_card and not record.late:
                    card_id = _save_card(session, payment, result, make_default=record.make_default)
                emit(
                    session,
                    type="payment.succeeded",
                    stream=stream,
                    payload={"payment_id": payment.id, "invoice_id": payment.invoice_id, "amount_cents": payment.approved_cents, "method": "terminal"},
                    dedupe_key=payment_succeeded_event_key(payment.id),
                )
            else:
                if payment.status in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
                    record_declined(session, payment, reason=result.decline_reason, decline_class=result.decline_class, message=result.result_message)
                    emit(
                        session,
                        type="payment.failed",
                        stream=stream,
                        payload={"payment_id": payment.id, "invoice_id": payment.invoice_id, "reason": result.decline_reason, "method": "terminal"},
                        dedupe_key=payment_failed_event_key(payment.id),
                    )
            return _outcome(session, payment, card_id=card_id, deposit_id=deposit_id), booking

    def _after_late_void(self, payment_id: str, kind: str, at: datetime | None) -> TerminalOutcome:
        with session_scope(self._engine, at=at) as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            stream = event_stream(payment.subscription_id, payment.client_id)
            emit(
                session,
                type="payment.late_approval_reversed",
                stream=stream,
                payload={"payment_id": payment.id, "invoice_id": payment.invoice_id, "by": kind, "amount_cents": payment.approved_cents},
                dedupe_key=payment_late_reversed_event_key(payment.id),
            )
            base = _outcome(session, payment)
            return TerminalOutcome(
                **{**base.__dict__, "status": PaymentResult.LATE_APPROVAL_VOIDED, "message": f"approved after the counter gave up; {kind} sent"}
            )

    @activity.defn(name="close_terminal_payment")
    async def close_terminal_payment(self, close: TerminalClose) -> TerminalOutcome:
        """End a payment that moved no money (cancelled, refused) or flag it for manual review."""
        return await asyncio.to_thread(self._close, close, activity_time(close.at))

    def _close(self, close: TerminalClose, at: datetime | None) -> TerminalOutcome:
        with session_scope(self._engine, at=at) as session:
            payment = session.exec(select(Payment).where(Payment.id == close.payment_id).with_for_update()).first()
            if payment is None:
                return TerminalOutcome(close.payment_id, close.status, message=close.message)
            stream = event_stream(payment.subscription_id, payment.client_id)
            close_attempt(
                session, payment, status=PaymentStatus.UNKNOWN if close.status == PaymentResult.MANUAL_REVIEW else PaymentStatus.FAILED, message=close.message
            )
            if close.status == PaymentResult.MANUAL_REVIEW:
                emit(
                    session,
                    type="payment.manual_review",
                    stream=stream,
                    payload={
                        "payment_id": payment.id,
                        "invoice_id": payment.invoice_id,
                        "external_transaction_id": payment.external_transaction_id,
                        "detail": close.message,
                    },
                    dedupe_key=payment_manual_review_event_key(payment.id),
                )
            base = _outcome(session, payment)
            return TerminalOutcome(**{**base.__dict__, "status": close.status, "message": close.message})


def _outcome(session: Session, payment: Payment, *, card_id: str | None = None, deposit_id: str | None = None) -> TerminalOutcome:
    invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    if payment.status == PaymentStatus.APPROVED:
        status: str = PaymentResult.APPROVED if payment.approved_cents >= payment.amount_cents else PaymentResult.PARTIAL
    elif payment.status == PaymentStatus.DECLINED and payment.decline_reason == "cancelled":
        status = PaymentResult.CANCELLED_ON_DEVICE
    else:
        status = payment.status
    return TerminalOutcome(
        payment_id=payment.id,
        status=status,
        approved_cents=payment.approved_cents,
        balance_cents=open_balance(invoice) if invoice else 0,
        invoice_id=invoice.id if invoice else None,
        invoice_status=invoice.status if invoice else None,
        subscription_id=invoice.subscription_id if invoice else None,
        card_id=card_id,
        deposit_id=deposit_id,
        message=payment.result_message or "",
    )


def _save_card(session: Session, payment: Payment, result: GatewayResult, *, make_default: bool) -> str | None:
    """Keep the tapped card on file: Gravity's token is the sale's uniqueTransId (never the number)."""
    if not result.unique_trans_id or not result.expiry_mmyy or len(result.expiry_mmyy) != 4:
        return None
    fingerprint = result.fingerprint or sale_fingerprint(result.unique_trans_id)
    card = session.exec(select(SavedCard).where(SavedCard.client_id == payment.client_id, SavedCard.fingerprint == fingerprint)).first()
    if card is None:
        card = session.exec(select(SavedCard).where(SavedCard.gravity_ref == result.unique_trans_id)).first()
    if card is None:
        card = SavedCard(
            id=saved_card_id_for(payment.external_transaction_id),
            client_id=payment.client_id,
            location_id=payment.location_id,
            gravity_ref=result.unique_trans_id,
            masked_number=result.masked_account or "",
            brand=result.card_brand or "",
            exp_month=int(result.expiry_mmyy[:2]),
            exp_year=2000 + int(result.expiry_mmyy[2:]),
            fingerprint=fingerprint,
            is_default=False,
        )
        session.add(card)
        session.flush()
    if make_default and not card.is_default:
        for other in session.exec(select(SavedCard).where(SavedCard.client_id == payment.client_id, SavedCard.is_default == True)).all():  # noqa: E712
            other.is_default = False
            session.add(other)
        session.flush()
        card.is_default = True
        card.disabled = False
        session.add(card)
    payment.card_id = card.id
    session.add(payment)
    emit(
        session,
        type="card.saved",
        stream=client_stream(payment.client_id),
        payload={"card_id": card.id, "masked_number": card.masked_number, "brand": card.brand, "default": card.is_default},
        dedupe_key=card_saved_event_key(payment.id),
    )
    session.flush()
    return card.id
