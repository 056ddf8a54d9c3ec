"""Deposits (prepayments that become client credit) taken from a saved card, and their refunds:
the Gravity calls between the bookkeeping steps of `books.deposits`.

Same exactly-once shape as `card_charges`: the payment row (purpose "deposit", no invoice) is
committed before Gravity is called; a retry looks the external id up before it would send again.
The approved amount becomes a `Deposit` row (client credit) in the same transaction as the ledger
posting, and `apply_client_credit` spends it, oldest first, on the client's next invoices.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.incidents import unbookable_approvals
from activities.invoice_compensation import GiveBack
from books.answers import book_approval
from books.attempts import close_attempt, find_attempt, lock_payment, record_declined
from books.deposits import DepositRefused, card_deposit_refusal, deposit_outcome, record_deposit, refundable_deposit, start_deposit_attempt
from foundation.contracts import DepositOutcome, GiveBackOutcome
from foundation.ids import (
    card_deposit_key,
    client_stream,
    deposit_reference,
    deposit_refund_key,
    external_id,
    payment_failed_event_key,
    refund_attempt_key,
    void_attempt_key,
)
from foundation.statuses import PaymentStatus
from foundation.telemetry import counters
from gravity.directory import GatewayDirectory
from gravity.errors import PermanentGravityError
from gravity.results import Outcome, TransactionResult
from models.billing import Refund
from models.clinic import Client, Location, SavedCard
from models.db import session_scope
from models.outbox import emit


@dataclass(frozen=True)
class _Ready:
    payment_id: str
    external_transaction_id: str
    amount_cents: int
    card_ref: str
    oid: str
    fresh: bool
    done: DepositOutcome | None = None


class DepositTaker:
    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._gateways = gateways
        self._give_back = GiveBack(engine, gateways)

    async def take_from_card(self, *, client_id: str, card_id: str, amount_cents: int, request_key: str, at: datetime | None = None) -> DepositOutcome:
        """Charge `amount_cents` to a saved card as client credit, exactly once per `request_key`;
        the books dated `at` (None: the database's now())."""
        ready = await asyncio.to_thread(self._prepare, client_id, card_id, amount_cents, request_key, at)
        if ready.done is not None:
            return ready.done
        try:
            async with heartbeating():
                result = await self._gateways.for_oid(ready.oid).charge_saved_card_safely(
                    card_ref=ready.card_ref,
                    amount_cents=ready.amount_cents,
                    external_id=ready.external_transaction_id,
                    reference=deposit_reference(ready.payment_id),
                    look_up_first=not ready.fresh,
                )
        except PermanentGravityError as error:
            await asyncio.to_thread(self._close_refused, ready.payment_id, str(error), at)  # nothing was taken
            raise ApplicationError(f"Gravity refused the deposit charge: {error}", type="GravityPermanent", non_retryable=True) from None
        outcome = await asyncio.to_thread(self.record, ready.payment_id, result, at)
        counters().charge(
            outcome=result.outcome.value,
            attempt=1,
            channel="deposit",
            decline_reason=result.decline_reason.value if result.decline_reason else None,
            decline_class=result.decline_class.value if result.decline_class else None,
        )
        return outcome

    def _close_refused(self, payment_id: str, message: str, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            payment = lock_payment(session, payment_id)
            close_attempt(session, payment, status=PaymentStatus.FAILED, message=f"refused by Gravity: {message}")

    def _prepare(self, client_id: str, card_id: str, amount_cents: int, request_key: str, at: datetime | None) -> _Ready:
        attempt_key = card_deposit_key(client_id, request_key)
        with session_scope(self._engine, at=at) as session:
            existing = find_attempt(session, attempt_key)
            if existing is not None and existing.status in (PaymentStatus.APPROVED, PaymentStatus.DECLINED):
                return _Ready(existing.id, existing.external_transaction_id, existing.amount_cents, "", "", False, deposit_outcome(session, existing))
            if existing is not None:
                # Written (and perhaps sent) by an earlier try: finish it whatever changed since; the
                # checks were made before it was written.
                card = session.get(SavedCard, existing.card_id)
                location = session.get(Location, existing.location_id)
                assert card is not None and location is not None
                return _Ready(existing.id, existing.external_transaction_id, existing.amount_cents, card.gravity_ref, location.gravity_oid, False)
            refusal = card_deposit_refusal(session, client_id=client_id, card_id=card_id, amount_cents=amount_cents)
            if refusal is not None:
                raise DepositRefused(refusal)
            card = session.get(SavedCard, card_id)
            client = session.get(Client, client_id)
            assert card is not None and client is not None
            location = session.get(Location, client.location_id)
            assert location is not None
            payment, fresh = start_deposit_attempt(
                session,
                client_id=client_id,
                location_id=location.id,
                attempt_key=attempt_key,
                external_transaction_id=external_id(attempt_key),
                method="card_on_file",
                amount_cents=amount_cents,
                card_id=card.id,
            )
            return _Ready(payment.id, payment.external_transaction_id, payment.amount_cents, card.gravity_ref, location.gravity_oid, fresh)

    def record(self, payment_id: str, result: TransactionResult, at: datetime | None = None) -> DepositOutcome:
        """Book Gravity's answer to a deposit charge (blocking: run it in a thread); the janitor
        books what it finds the same way."""
        with session_scope(self._engine, at=at) as session, unbookable_approvals():
            payment = lock_payment(session, payment_id)
            stream = client_stream(payment.client_id)
            if result.outcome in (Outcome.APPROVED, Outcome.PARTIAL):
                book_approval(session, payment, result, facts=result.facts())
                record_deposit(session, payment)
            else:
                reason = str(result.decline_reason.value) if result.decline_reason else None
                klass = str(result.decline_class.value) if result.decline_class else None
                record_declined(session, payment, reason=reason, decline_class=klass, message=result.result_message)
                emit(
                    session,
                    type="payment.failed",
                    stream=stream,
                    payload={"payment_id": payment.id, "purpose": "deposit", "reason": reason},
                    dedupe_key=payment_failed_event_key(payment.id),
                )
            return deposit_outcome(session, payment)

    async def refund_unused(self, *, deposit_id: str, request_key: str, at: datetime | None = None) -> GiveBackOutcome:
        """Give back what is left of a deposit to the card that paid it (void if still possible),
        dated `at` (None: the database's now())."""
        key = deposit_refund_key(deposit_id, request_key)
        payment_id, remaining = await asyncio.to_thread(self._refundable_deposit, deposit_id, key)
        return await self._give_back.give_back(payment_id=payment_id, amount_cents=remaining, key=key, reason=f"unused deposit {deposit_id} refunded", at=at)

    def _refundable_deposit(self, deposit_id: str, key: str) -> tuple[str, int]:
        with session_scope(self._engine) as session:
            started = session.exec(
                select(Refund).where(Refund.attempt_key.in_((void_attempt_key(key), refund_attempt_key(key)))).order_by(Refund.created_at.desc())  # type: ignore[attr-defined, union-attr]
            ).first()
            if started is not None:
                # An earlier try already reserved the credit (so none looks unused now): finish that one.
                return started.payment_id, started.amount_cents
            return refundable_deposit(session, deposit_id)
