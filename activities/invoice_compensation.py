"""Giving a payment back (void when Gravity still allows it, else refund), and the activities of the
invoice-cancellation saga built on it.

Why "void first, then refund" is decided by asking Gravity: only Gravity knows whether a sale's batch
has settled. A void is tried only for the whole, untouched sale; if Gravity answers that it can no
longer be voided (`VoidNotPossible`), the void's row is closed as failed and a refund is sent under a
NEW attempt key. Both keys are derived from the caller's business key, so a crashed or retried
activity finds its earlier rows (and looks their ids up at Gravity) instead of giving money back twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.moment import activity_time, dated
from activities.refunds import Refunder, RefundOutcome
from books.attempts import lock_invoice
from books.credit import credit_returned, return_credit_application
from books.refunds import RefundRefused, lock_refund, record_refund_failed, refundable_cents, unapply_from_invoice
from books.voiding import void_invoice
from foundation.contracts import CompensationPlan, CompensationStep, GiveBackOutcome
from foundation.ids import (
    event_stream,
    excess_key,
    invoice_cancellation_key,
    payment_excess_returned_event_key,
    refund_attempt_key,
    void_attempt_key,
)
from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus
from gravity.client import GravityClient
from gravity.directory import GatewayDirectory
from gravity.errors import VoidNotPossible
from gravity.results import TransactionResult
from models.billing import CreditApplication, Deposit, Payment, Refund
from models.db import session_scope
from models.outbox import emit


class _VoidRefused(Exception):
    """Gravity will not void this sale (settled, or it has refunds): refund it instead."""


class _VoidFirstRefunder(Refunder):
    """A `Refunder` that reports a refused void distinctly instead of as a permanent failure."""

    async def send(self, gateway: GravityClient, kind: str, sale_id: str | None, refund: Refund, *, look_up_first: bool) -> TransactionResult:
        try:
            return await super().send(gateway, kind, sale_id, refund, look_up_first=look_up_first)
        except VoidNotPossible as error:
            if kind != "void":
                raise
            raise _VoidRefused(str(error)) from None


class GiveBack:
    """Void-or-refund of one payment, exactly once per business key."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._refunder = _VoidFirstRefunder(engine, gateways)

    async def give_back(
        self, *, payment_id: str, amount_cents: int | None, key: str, reason: str, unapply: bool = False, at: datetime | None = None
    ) -> GiveBackOutcome:
        """Give back `amount_cents` (None: all that is refundable) of a payment.

        `key` names the request (e.g. `cancel:{invoice}:{payment}`); the void's attempt key is
        `void:{key}` and the refund's `refund:{key}`. With `unapply` the money also comes off the
        invoice's paid amount (cancellation, late approvals), instead of being a refund expense. The
        rows are dated `at` (None: the database's now()).
        """
        void_key, refund_key = void_attempt_key(key), refund_attempt_key(key)
        existing, refundable, whole = await asyncio.to_thread(self._state, payment_id, void_key, refund_key)
        done = next((r for r in existing if r.status == RefundStatus.DONE), None)
        if done is not None:
            if unapply:
                await asyncio.to_thread(self._unapply, done.id, at)
            return GiveBackOutcome(payment_id, done.kind, done.amount_cents, done.id)
        void_row = next((r for r in existing if r.attempt_key == void_key), None)
        refund_row = next((r for r in existing if r.attempt_key == refund_key), None)
        outcome: RefundOutcome | None = None
        if refund_row is None:
            # An unfinished void keeps its reserved amount; otherwise decide afresh from the payment.
            if void_row is not None and void_row.status != RefundStatus.FAILED:
                outcome = await self._try_void(payment_id, void_row.amount_cents, void_key, reason, at)
            elif void_row is None:
                amount = refundable if amount_cents is None else amount_cents
                if amount <= 0:
                    return GiveBackOutcome(payment_id, "none", 0)
                if amount == whole:
                    outcome = await self._try_void(payment_id, amount, void_key, reason, at)
        if outcome is None:
            if refund_row is not None:
                amount = refund_row.amount_cents
            else:
                _, refundable, _ = await asyncio.to_thread(self._state, payment_id, void_key, refund_key)
                amount = refundable if amount_cents is None else amount_cents
                if amount <= 0:
                    return GiveBackOutcome(payment_id, "none", 0)
            outcome = await self._refunder.give_back(payment_id=payment_id, amount_cents=amount, kind="refund", attempt_key=refund_key, reason=reason, at=at)
        if outcome.status != RefundStatus.DONE:
            raise ApplicationError(f"Gravity did not give back payment {payment_id}: {outcome.message}", type="GravityPermanent", non_retryable=True)
        if unapply:
            await asyncio.to_thread(self._unapply, outcome.refund_id, at)
        return GiveBackOutcome(payment_id, outcome.kind, outcome.amount_cents, outcome.refund_id)

    async def _try_void(self, payment_id: str, amount: int, void_key: str, reason: str, at: datetime | None) -> RefundOutcome | None:
        """The void's outcome, or None when Gravity will not void (its row is then closed as failed)."""
        try:
            outcome = await self._refunder.give_back(payment_id=payment_id, amount_cents=amount, kind="void", attempt_key=void_key, reason=reason, at=at)
        except _VoidRefused as error:
            await asyncio.to_thread(self._fail_by_key, void_key, str(error), at)
            return None
        return outcome if outcome.status == RefundStatus.DONE else None

    async def return_excess(self, payment_id: str, *, at: datetime | None = None) -> GiveBackOutcome:
        """Give back what an approval brought that no invoice needed (its "returning" credit): a
        void when that is the whole sale, else a refund, then a `payment.excess_returned` event,
        all dated `at` (None: the database's now())."""
        amount = await asyncio.to_thread(self._excess_to_return, payment_id)
        if amount == 0:
            return GiveBackOutcome(payment_id, "none", 0)
        outcome = await self.give_back(
            payment_id=payment_id, amount_cents=amount, key=excess_key(payment_id), reason="approved after the invoice no longer needed it", at=at
        )
        await asyncio.to_thread(self._excess_returned, outcome, at)
        return outcome

    def _excess_to_return(self, payment_id: str) -> int:
        with session_scope(self._engine) as session:
            deposit = session.exec(select(Deposit).where(Deposit.payment_id == payment_id, Deposit.source == "overpayment")).first()
            return deposit.amount_cents if deposit is not None and deposit.status in (DepositStatus.RETURNING, DepositStatus.REFUNDED) else 0

    def _excess_returned(self, outcome: GiveBackOutcome, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            payment = session.get(Payment, outcome.payment_id)
            assert payment is not None
            stream = event_stream(payment.subscription_id, payment.client_id)
            emit(
                session,
                type="payment.excess_returned",
                stream=stream,
                payload={"payment_id": payment.id, "invoice_id": payment.invoice_id, "by": outcome.kind, "amount_cents": outcome.amount_cents},
                dedupe_key=payment_excess_returned_event_key(payment.id),
            )

    def _state(self, payment_id: str, void_key: str, refund_key: str) -> tuple[list[Refund], int, int]:
        with session_scope(self._engine) as session:
            payment = session.get(Payment, payment_id)
            if payment is None:
                raise ApplicationError(f"unknown payment {payment_id}", type="NotFound", non_retryable=True)
            rows = list(session.exec(select(Refund).where(Refund.attempt_key.in_((void_key, refund_key)))))  # type: ignore[attr-defined]
            whole = payment.approved_cents if payment.refunded_cents == 0 else -1
            return rows, refundable_cents(payment), whole

    def _fail_by_key(self, attempt_key: str, message: str, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            refund = session.exec(select(Refund).where(Refund.attempt_key == attempt_key).with_for_update()).first()
            if refund is not None:
                record_refund_failed(session, refund, message=message)

    def _unapply(self, refund_id: str | None, at: datetime | None) -> None:
        if refund_id is None:
            return
        with session_scope(self._engine, at=at) as session:
            refund = lock_refund(session, refund_id)
            unapply_from_invoice(session, refund)


def refused(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidCommand", non_retryable=True)


class InvoiceCompensationActivities:
    """The saga's steps: what is left to give back, give back one payment, return one credit, void."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._give_back = GiveBack(engine, gateways)

    @activity.defn(name="plan_invoice_compensation")
    async def plan_invoice_compensation(self, invoice_id: str) -> CompensationPlan:
        return await asyncio.to_thread(self._plan, invoice_id)

    def _plan(self, invoice_id: str) -> CompensationPlan:
        with session_scope(self._engine) as session:
            invoice = lock_invoice(session, invoice_id)
            if invoice is None:
                raise refused(f"unknown invoice {invoice_id}")
            if invoice.status != InvoiceStatus.VOID and invoice.cancel_requested_at is None:
                invoice.cancel_requested_at = datetime.now(UTC)  # no new collection from here on
            payments = session.exec(
                select(Payment)
                .where(Payment.invoice_id == invoice_id, Payment.status == PaymentStatus.APPROVED, Payment.method != "credit")
                .order_by(Payment.created_at, Payment.id)  # type: ignore[arg-type]
            ).all()
            applications = session.exec(
                select(CreditApplication).where(CreditApplication.invoice_id == invoice_id).order_by(CreditApplication.id)  # type: ignore[arg-type]
            ).all()
            return CompensationPlan(
                invoice_id=invoice_id,
                payment_ids=[p.id for p in payments if refundable_cents(p) > 0],
                credit_application_ids=[a.id for a in applications if a.id is not None and not credit_returned(session, a.id)],
                subscription_id=invoice.subscription_id,
                invoice_status=invoice.status,
            )

    @activity.defn(name="compensate_payment")
    async def compensate_payment(self, step: CompensationStep) -> GiveBackOutcome:
        """Give one payment back in full (void if possible, else refund), off the invoice."""
        assert step.payment_id is not None
        try:
            with dated(step.at) as at:
                return await self._give_back.give_back(
                    payment_id=step.payment_id,
                    amount_cents=None,
                    key=invoice_cancellation_key(step.invoice_id, step.payment_id),
                    reason=f"invoice {step.invoice_id} cancelled: {step.reason}".strip(": "),
                    unapply=True,
                    at=at,
                )
        except RefundRefused as error:
            raise refused(str(error)) from None

    @activity.defn(name="return_invoice_credit")
    async def return_invoice_credit(self, step: CompensationStep) -> int:
        assert step.credit_application_id is not None
        return await asyncio.to_thread(self._return_credit, step.credit_application_id, activity_time(step.at))

    def _return_credit(self, application_id: int, at: datetime | None) -> int:
        with session_scope(self._engine, at=at) as session:
            return return_credit_application(session, application_id)

    @activity.defn(name="void_cancelled_invoice")
    async def void_cancelled_invoice(self, step: CompensationStep) -> str:
        return await asyncio.to_thread(self._void, step.invoice_id, step.reason, activity_time(step.at))

    def _void(self, invoice_id: str, reason: str, at: datetime | None) -> str:
        with session_scope(self._engine, at=at) as session:
            invoice = lock_invoice(session, invoice_id)
            if invoice is None:
                raise refused(f"unknown invoice {invoice_id}")
            try:
                void_invoice(session, invoice, reason=reason or "cancelled")
            except ValueError as error:
                # Something new arrived on the invoice meanwhile: the saga plans again.
                raise ApplicationError(str(error), type="NotYetCompensated") from None
            return invoice.status
