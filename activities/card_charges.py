"""Charging a saved card for one invoice, exactly once per attempt key.

Shared by the subscription cycle, settlements and proration invoices. Three steps, two database
transactions around one Gravity call:

1. open the attempt (`books.charges.open_card_attempt`): under the invoice's lock (its one
   arbiter), check it is still open, that no other collector holds what is left of it, and that
   the card is usable, and write the attempt's payment row (UNIQUE attempt key and
   externalTransactionId) for what may be collected - committed before anything is sent;
2. send (`CardCollector.send`): if the row already existed, an earlier try may have reached
   Gravity: look the id up first and send only if Gravity has never seen it; a lost answer becomes
   a lookup, never a second charge. A row the invoice no longer needs in full (paid, voided or
   credited meanwhile) is only looked up: found, it is booked; never sent, it is closed and a new
   attempt asks for what is left;
3. record the answer (`books.answers`: payment, ledger, invoice balance, outbox) under the same
   keys; whatever the invoice no longer needed is given back (or kept as credit) at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.incidents import unbookable_approvals
from activities.invoice_compensation import GiveBack
from books.answers import Booking, Decline, record_card_approval, record_card_decline
from books.attempts import lock_invoice
from books.charges import ToSend, close_refused, open_card_attempt, supersede
from foundation.contracts import ChargeOutcome
from foundation.telemetry import counters, log_context
from gravity.directory import GatewayDirectory
from gravity.errors import PermanentGravityError
from gravity.results import DeclineClass, Outcome, TransactionResult
from models.db import session_scope

log = logging.getLogger(__name__)


class CardCollector:
    """Database steps run in a thread (`asyncio.to_thread`) so the worker's event loop keeps polling."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._gateways = gateways
        self._give_back = GiveBack(engine, gateways)

    async def collect(
        self, *, invoice_id: str, card_id: str | None, attempt_key: str, attempt: int, when: datetime, stream: str, at: datetime | None = None
    ) -> ChargeOutcome:
        """Try to collect the invoice's open balance from the card; a decline is a result."""
        # Heartbeats cover every phase: a slow database (a pool checkout waits up to 30 s) must not
        # look like a dead worker, and a dead worker is noticed in seconds whatever it was doing.
        with log_context(invoice_id=invoice_id):
            async with heartbeating():
                opened = await asyncio.to_thread(self._open, invoice_id, card_id, attempt_key, attempt, when, at)
                return await self.send(opened, invoice_id=invoice_id, attempt=attempt, stream=stream, at=at)

    def _open(self, invoice_id: str, card_id: str | None, attempt_key: str, attempt: int, when: datetime, at: datetime | None) -> ChargeOutcome | ToSend:
        with session_scope(self._engine, at=at) as session:
            invoice = lock_invoice(session, invoice_id)
            if invoice is None:
                raise ApplicationError(f"unknown invoice {invoice_id}", type="NotFound", non_retryable=True)
            return open_card_attempt(session, invoice, card_id=card_id, attempt_key=attempt_key, attempt=attempt, when=when)

    async def send(self, opened: ChargeOutcome | ToSend, *, invoice_id: str, attempt: int, stream: str, at: datetime | None = None) -> ChargeOutcome:
        """Send an opened attempt (or look it up), record Gravity's answer and give back what the
        invoice no longer needed; an outcome decided without sending is returned as it is. The
        caller holds the heartbeat and the log context; the books are dated `at` (None: now())."""
        if isinstance(opened, ChargeOutcome):
            return opened
        gateway = self._gateways.for_oid(opened.oid)
        try:
            if opened.send:
                result = await gateway.charge_saved_card_safely(
                    card_ref=opened.card_ref,
                    amount_cents=opened.amount_cents,
                    external_id=opened.external_transaction_id,
                    reference=invoice_id,
                    look_up_first=not opened.fresh,
                )
            else:
                found = await gateway.find(opened.external_transaction_id)
                if found is None:
                    return await asyncio.to_thread(self._supersede, opened.payment_id, at)
                result = found
        except PermanentGravityError as error:
            await asyncio.to_thread(self._close_refused, opened.payment_id, str(error), at)
            raise ApplicationError(f"Gravity refused the charge request: {error}", type="GravityPermanent", non_retryable=True) from None
        outcome, booking = await asyncio.to_thread(self.record, opened.payment_id, result, stream, at)
        if booking.returning:
            await self._give_back.return_excess(opened.payment_id, at=at)
        counters().charge(outcome=result.outcome.value, attempt=attempt, decline_reason=_text(result.decline_reason), decline_class=_text(result.decline_class))
        log.info(
            "charge attempt %d %s (%s)", attempt, result.outcome.value, _text(result.decline_reason) or f"{opened.amount_cents} cents"
        )  # the workflow, subscription and invoice ids come from the log context
        return outcome

    def _close_refused(self, payment_id: str, message: str, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            close_refused(session, payment_id, message)

    def _supersede(self, payment_id: str, at: datetime | None) -> ChargeOutcome:
        with session_scope(self._engine, at=at) as session:
            return supersede(session, payment_id)

    def record(self, payment_id: str, result: TransactionResult, stream: str, at: datetime | None = None) -> tuple[ChargeOutcome, Booking]:
        """Book Gravity's answer to a card-on-file attempt in one transaction (blocking: run it in a
        thread); the janitor books what it finds the same way."""
        with session_scope(self._engine, at=at) as session, unbookable_approvals():
            if result.outcome in (Outcome.APPROVED, Outcome.PARTIAL):
                return record_card_approval(session, payment_id, result, facts=result.facts(), stream=stream)
            decline = Decline(
                _text(result.decline_reason),
                _text(result.decline_class),
                result.result_message,
                hard=result.decline_class is DeclineClass.HARD,
                known=result.decline_known,
            )
            return record_card_decline(session, payment_id, decline, stream=stream), Booking()


def _text(value: object) -> str | None:
    """Enum members to their stored string."""
    if value is None:
        return None
    return str(getattr(value, "value", value))
