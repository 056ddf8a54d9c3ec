"""Charging a saved card for one invoice, exactly once per attempt key.

Shared by the subscription cycle, settlements and proration invoices. Three steps, two database
transactions around one Gravity call:

1. lock the invoice (its one arbiter), check it is still open, that no other collector holds what
   is left of it, and that the card is usable, and write the attempt's payment row (UNIQUE attempt
   key and externalTransactionId) for what may be collected - committed before anything is sent;
2. if the row already existed, an earlier try may have reached Gravity: look the id up first and send
   only if Gravity has never seen it; a lost answer becomes a lookup, never a second charge. A row
   the invoice no longer needs in full (paid, voided or credited meanwhile) is only looked up: found,
   it is booked; never sent, it is closed and a new attempt asks for what is left;
3. record the answer (payment, ledger, invoice balance, outbox) under the same keys; whatever the
   invoice no longer needed is given back (or kept as credit) at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import ColumnElement, Engine, Row, Select, bindparam, func, select
from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from activities.approvals import book_approval
from activities.cards import card_expired_on, network_refusal
from activities.heartbeat import heartbeating
from activities.invoice_compensation import GiveBack
from foundation.contracts import ChargeOutcome
from foundation.ids import (
    card_disabled_event_key,
    external_id,
    payment_decline_unclassified_event_key,
    payment_failed_event_key,
    payment_succeeded_event_key,
)
from foundation.statuses import ChargeResult, InvoiceStatus, NotCharged, PaymentStatus
from foundation.telemetry import counters, log_context
from gravity.directory import GatewayDirectory
from gravity.errors import PermanentGravityError
from gravity.results import DeclineClass, Outcome, TransactionResult
from models.billing import Invoice, Payment
from models.clinic import Location, SavedCard
from models.db import session_scope
from models.invoicing import (
    Booking,
    close_attempt,
    collectable_cents,
    find_attempt,
    lock_invoice,
    lock_payment_and_invoice,
    new_attempt,
    open_balance,
    record_declined,
)
from models.outbox import emit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardOnFile:
    """The saved card's fields a charge checks and sends (`gravity_ref` is Gravity's token)."""

    id: str
    client_id: str
    gravity_ref: str
    exp_month: int
    exp_year: int
    disabled: bool
    brand: str = ""


@dataclass(frozen=True)
class ChargeSite:
    """What a card-on-file charge needs of the clinic location and of the card (None: no such card)."""

    location_id: str
    timezone: str
    gravity_oid: str
    allow_recurring_gravity: bool
    card: CardOnFile | None


def charge_site_query(location_id: ColumnElement[str], card_id: ColumnElement[str], *extra: ColumnElement[Any]) -> Select[Any]:
    """The SELECT of a location's and a card on file's plain columns (`site_of` reads its row), with
    `extra` columns beside them: a caller can read the site in the statement that does its own work
    (the subscription cycle advances its subscription in the same statement) instead of one more."""
    location, card = Location.__table__.c, SavedCard.__table__.c
    return (
        select(
            location.id, location.timezone, location.gravity_oid, location.allow_recurring_gravity,
            card.id.label("card_id"), card.client_id, card.gravity_ref, card.exp_month, card.exp_year, card.disabled,
            card.brand, *extra,
        )
        .select_from(Location.__table__.outerjoin(SavedCard.__table__, card.id == card_id))
        .where(location.id == location_id)
    )


def site_of(row: Row[Any]) -> ChargeSite:
    """The `ChargeSite` in a row of `charge_site_query`."""
    on_file = None
    if row.card_id is not None:
        on_file = CardOnFile(row.card_id, row.client_id, row.gravity_ref, row.exp_month, row.exp_year, row.disabled, row.brand)
    return ChargeSite(row.id, row.timezone, row.gravity_oid, row.allow_recurring_gravity, on_file)


_READ_SITE = charge_site_query(bindparam("location_id"), bindparam("card_id"))
# How often this card was tried (and declined) in the networks' windows, by the workflows' clock.
_CARD_TRIES = select(
    func.count().filter(Payment.status == PaymentStatus.DECLINED, Payment.attempted_at > bindparam("since_30d")),  # type: ignore[arg-type]
    func.count().filter(Payment.attempted_at > bindparam("since_24h")),  # type: ignore[arg-type]
).where(
    Payment.card_id == bindparam("card_id"),
    Payment.attempted_at > bindparam("since_30d"),  # type: ignore[operator]
    Payment.attempted_at <= bindparam("until"),  # type: ignore[operator]
)


def read_charge_site(session: Session, location_id: str, card_id: str | None) -> ChargeSite:
    """The location and the card on file in one SELECT of plain columns, because loading them as
    ORM entities spends a billing worker's CPU on whole objects when the charge reads a few fields."""
    return site_of(session.execute(_READ_SITE, {"location_id": location_id, "card_id": card_id}).one())


@dataclass(frozen=True)
class Prepared:
    """What a `before` step did in the collecting transaction: the invoice, already locked, and the
    location and card it read (None: the collector reads them). `new_invoice`: the step created
    the invoice, so no attempt of it can exist yet (a payment row references its invoice) and the
    attempt lookup is skipped."""

    invoice: Invoice
    site: ChargeSite | None = None
    new_invoice: bool = False


@dataclass(frozen=True)
class _Ready:
    payment_id: str
    external_transaction_id: str
    amount_cents: int
    card_ref: str
    oid: str
    fresh: bool
    send: bool = True  # False: the row's amount is no longer wanted; look it up, never send it


class CardCollector:
    """Database steps run in a thread (`asyncio.to_thread`) so the worker's event loop keeps polling."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._gateways = gateways
        self._give_back = GiveBack(engine, gateways)

    async def collect(
        self,
        *,
        invoice_id: str,
        card_id: str | None,
        attempt_key: str,
        attempt: int,
        when: datetime,
        stream: str,
        before: Callable[[Session], Prepared] | None = None,
    ) -> ChargeOutcome:
        """Try to collect the invoice's open balance from the card; a decline is a result.

        `before` runs first in the same database transaction (the subscription cycle creates its
        invoice there), which saves a commit and the re-reads a second transaction would need.
        """
        # Heartbeats cover every phase: a slow database (a pool checkout waits up to 30 s) must not
        # look like a dead worker, and a dead worker is noticed in seconds whatever it was doing.
        with log_context(invoice_id=invoice_id):
            async with heartbeating():
                return await self._collect(
                    invoice_id=invoice_id, card_id=card_id, attempt_key=attempt_key, attempt=attempt, when=when, stream=stream, before=before
                )

    async def _collect(
        self,
        *,
        invoice_id: str,
        card_id: str | None,
        attempt_key: str,
        attempt: int,
        when: datetime,
        stream: str,
        before: Callable[[Session], Prepared] | None,
    ) -> ChargeOutcome:
        ready = await asyncio.to_thread(
            self._prepare, invoice_id=invoice_id, card_id=card_id, attempt_key=attempt_key, attempt=attempt, when=when, before=before
        )
        if isinstance(ready, ChargeOutcome):
            return ready
        gateway = self._gateways.for_oid(ready.oid)
        try:
            if ready.send:
                result = await gateway.charge_saved_card_safely(
                    card_ref=ready.card_ref,
                    amount_cents=ready.amount_cents,
                    external_id=ready.external_transaction_id,
                    reference=invoice_id,
                    look_up_first=not ready.fresh,
                )
            else:
                found = await gateway.find(ready.external_transaction_id)
                if found is None:
                    return await asyncio.to_thread(self._supersede, ready.payment_id)
                result = found
        except PermanentGravityError as error:
            # Refused before processing (bad request or credentials): nothing was taken, and the row
            # must not keep its reservation on the invoice while a person mends the cause.
            await asyncio.to_thread(self._close_refused, ready.payment_id, str(error))
            raise ApplicationError(f"Gravity refused the charge request: {error}", type="GravityPermanent", non_retryable=True) from None
        outcome, booking = await asyncio.to_thread(self._record, ready.payment_id, result, stream)
        if booking.returning:
            await self._give_back.return_excess(ready.payment_id)
        counters().charge(
            outcome=result.outcome.value, attempt=attempt, decline_reason=_text(result.decline_reason), decline_class=_text(result.decline_class)
        )
        log.info(
            "charge attempt %d %s (%s)", attempt, result.outcome.value, _text(result.decline_reason) or f"{ready.amount_cents} cents"
        )  # the workflow, subscription and invoice ids come from the log context
        return outcome

    def _prepare(
        self, *, invoice_id: str, card_id: str | None, attempt_key: str, attempt: int, when: datetime, before: Callable[[Session], Prepared] | None
    ) -> ChargeOutcome | _Ready:
        with session_scope(self._engine) as session:
            prepared = before(session) if before is not None else None
            own = prepared if prepared is not None and prepared.invoice.id == invoice_id else None
            invoice = own.invoice if own is not None else lock_invoice(session, invoice_id)
            if invoice is None:
                raise ApplicationError(f"unknown invoice {invoice_id}", type="NotFound", non_retryable=True)
            # The attempt is looked up before anything else: a row an earlier try wrote may have
            # reached Gravity, and is resolved whatever became of the invoice since.
            existing = None if own is not None and own.new_invoice else find_attempt(session, attempt_key)
            if existing is not None and existing.status in (PaymentStatus.APPROVED, PaymentStatus.DECLINED):
                return outcome_from_rows(invoice, existing)
            if existing is not None and existing.status != PaymentStatus.PENDING:
                return _not_collected(invoice, NotCharged.SUPERSEDED)
            if existing is not None:
                return self._resume(session, invoice, existing, when)
            balance = open_balance(invoice)
            if balance == 0:
                return _not_collected(invoice, None)
            # A new invoice has no other collector yet: the ordinary cycle pays no extra read.
            amount = balance if own is not None and own.new_invoice else collectable_cents(session, invoice)
            if amount == 0:
                return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=NotCharged.IN_PROGRESS)
            site = own.site if own is not None and own.site is not None else read_charge_site(session, invoice.location_id, card_id)
            refusal = _site_refusal(site, invoice, when)
            if refusal is not None:
                return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=refusal)
            assert site.card is not None
            if attempt > 1 and _network_refusal(session, site.card, when) is not None:
                return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=NotCharged.NETWORK_LIMIT)
            payment = new_attempt(
                session,
                invoice=invoice,
                attempt_key=attempt_key,
                external_transaction_id=external_id(attempt_key),
                method="card_on_file",
                amount_cents=amount,
                attempt=attempt,
                card_id=site.card.id,
                attempted_at=when,
            )
            return _Ready(payment.id, payment.external_transaction_id, payment.amount_cents, site.card.gravity_ref, site.gravity_oid, fresh=True)

    def _resume(self, session: Session, invoice: Invoice, pending: Payment, when: datetime) -> _Ready:
        """An attempt an earlier try wrote: sent again (after a lookup) only while the invoice still
        wants all of it from the same usable card; otherwise only looked up."""
        site = read_charge_site(session, invoice.location_id, pending.card_id)
        wanted = pending.amount_cents <= collectable_cents(session, invoice, besides=pending.id)
        send = wanted and _site_refusal(site, invoice, when) is None
        card_ref = site.card.gravity_ref if site.card is not None else ""
        return _Ready(pending.id, pending.external_transaction_id, pending.amount_cents, card_ref, site.gravity_oid, fresh=False, send=send)

    def _close_refused(self, payment_id: str, message: str) -> None:
        with session_scope(self._engine) as session:
            payment, _ = lock_payment_and_invoice(session, payment_id)
            close_attempt(session, payment, status=PaymentStatus.FAILED, message=f"refused by Gravity: {message}")

    def _supersede(self, payment_id: str) -> ChargeOutcome:
        """Close an attempt Gravity never saw because the invoice changed first (nothing was taken)."""
        with session_scope(self._engine) as session:
            payment, invoice = lock_payment_and_invoice(session, payment_id)
            close_attempt(session, payment, status=PaymentStatus.FAILED, message="not sent: the invoice changed before this attempt reached Gravity")
            return _not_collected(invoice, NotCharged.SUPERSEDED)

    def _record(self, payment_id: str, result: TransactionResult, stream: str) -> tuple[ChargeOutcome, Booking]:
        booking = Booking()
        with session_scope(self._engine) as session:
            payment, invoice = lock_payment_and_invoice(session, payment_id)
            if result.outcome in (Outcome.APPROVED, Outcome.PARTIAL):
                booking = book_approval(session, payment, result, invoice=invoice)
                emit(
                    session,
                    type="payment.succeeded",
                    stream=stream,
                    payload={"invoice_id": payment.invoice_id, "amount_cents": payment.approved_cents, "attempt": payment.attempt},
                    dedupe_key=payment_succeeded_event_key(payment.id),
                )
            else:
                reason = _text(result.decline_reason)
                klass = _text(result.decline_class)
                record_declined(session, payment, reason=reason, decline_class=klass, message=result.result_message)
                _after_decline(session, payment, result, stream)
                emit(
                    session,
                    type="payment.failed",
                    stream=stream,
                    payload={"invoice_id": payment.invoice_id, "reason": reason, "class": klass, "attempt": payment.attempt},
                    dedupe_key=payment_failed_event_key(payment.id),
                )
            return outcome_from_rows(invoice, payment), booking


def _network_refusal(session: Session, card: CardOnFile, when: datetime) -> str | None:
    """Why the card networks forbid retrying this card at `when` (retries only: a cycle's first
    attempt is no reattempt)."""
    params = {"card_id": card.id, "since_30d": when - timedelta(days=30), "since_24h": when - timedelta(hours=24), "until": when}
    declines, tries = session.execute(_CARD_TRIES, params).one()
    return network_refusal(card.brand, declines_in_30_days=int(declines), tries_in_24_hours=int(tries))


def _after_decline(session: Session, payment: Payment, result: TransactionResult, stream: str) -> None:
    """A card no issuer will approve again is disabled (never reattempted: no new cycle charges it),
    and a decline text in no table row is reported so the table can learn it."""
    if result.decline_class is DeclineClass.HARD and payment.card_id is not None:
        card = session.get(SavedCard, payment.card_id)
        if card is not None and not card.disabled:
            card.disabled = True
            session.add(card)
            emit(session, type="card.disabled", stream=stream,
                 payload={"card_id": card.id, "masked_number": card.masked_number, "reason": _text(result.decline_reason), "payment_id": payment.id},
                 dedupe_key=card_disabled_event_key(card.id, payment.id))
    if not result.decline_known:
        emit(session, type="payment.decline_unclassified", stream=stream,
             payload={"payment_id": payment.id, "result_message": result.result_message},
             dedupe_key=payment_decline_unclassified_event_key(payment.id))


def _site_refusal(site: ChargeSite, invoice: Invoice, when: datetime) -> NotCharged | None:
    """Why the card on file cannot be charged for this invoice now (a `not_charged_reason`)."""
    if not site.allow_recurring_gravity:
        return NotCharged.CHARGING_DISABLED
    card = site.card
    if card is None or card.disabled or card.client_id != invoice.client_id:
        return NotCharged.NO_CARD
    if card_expired_on(card.exp_month, card.exp_year, pendulum.instance(when).in_timezone(site.timezone).date()):
        return NotCharged.CARD_EXPIRED
    return None


def _not_collected(invoice: Invoice, reason: NotCharged | None) -> ChargeOutcome:
    """The outcome of a try that sent nothing: paid, closed (void) or `reason` with the balance."""
    if invoice.status == InvoiceStatus.PAID:
        return ChargeOutcome(invoice.id, ChargeResult.PAID, 0)
    if invoice.status == InvoiceStatus.VOID:
        return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, 0, not_charged_reason=NotCharged.INVOICE_CLOSED)
    return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, open_balance(invoice), not_charged_reason=reason)


def _text(value: object) -> str | None:
    """Enum members to their stored string."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def outcome_from_rows(invoice: Invoice, payment: Payment) -> ChargeOutcome:
    balance = open_balance(invoice)
    if payment.status == PaymentStatus.APPROVED:
        outcome = ChargeResult.PAID if balance == 0 else ChargeResult.PARTIAL
        return ChargeOutcome(invoice.id, outcome, balance, charged_cents=payment.approved_cents, external_transaction_id=payment.external_transaction_id)
    return ChargeOutcome(
        invoice.id,
        ChargeResult.DECLINED,
        balance,
        decline_reason=payment.decline_reason,
        decline_class=payment.decline_class,
        external_transaction_id=payment.external_transaction_id,
    )
