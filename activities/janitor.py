"""The janitor and the daily reconciliation: money movements nobody is finishing, and the books
against what Gravity says happened.

A pending attempt normally ends in the activity that wrote it. One whose activity gave up or whose
workflow went away stays pending and keeps its reservation on the invoice; the janitor looks such
rows up (older than a few minutes, so it never races a live try) and books what Gravity did, or
closes them as never sent. Booking is the same idempotent code the collectors use, so a collector
that wakes up later finds the row final and sends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity

from activities.card_charges import CardCollector
from activities.deposits import DepositTaker
from activities.invoice_compensation import GiveBack
from activities.terminal import TerminalActivities, gateway_result
from books import ledger_days
from books.attempts import close_attempt, lock_payment
from books.recognition import deferred_invoices, recognize_invoice
from books.refunds import lock_refund, record_refund_done, record_refund_failed
from foundation.contracts import JanitorInput, JanitorReport, ReconciliationInput, ReconciliationReport, TerminalRecord
from foundation.ids import (
    RECONCILIATION_STREAM,
    event_stream,
    payment_closed_unsent_event_key,
    reconciliation_completed_event_key,
    reconciliation_difference_event_key,
)
from foundation.statuses import PaymentStatus, RefundStatus
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from gravity.results import TransactionResult
from models.billing import Payment, Refund
from models.clinic import Location
from models.db import session_scope
from models.outbox import emit
from operations.period_reconciliation import Movement, reconcile_ended_days, reconcile_period


@dataclass(frozen=True)
class _Stale:
    kind: str  # payment | terminal | refund
    id: str
    external_transaction_id: str
    oid: str
    purpose: str = "invoice"


class JanitorActivities:
    def __init__(self, engine: Engine, gateways: GatewayDirectory, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock  # when the scheduled reconciliation runs (a test fixes it)
        self._gateways = gateways
        self._collector = CardCollector(engine, gateways)
        self._deposits = DepositTaker(engine, gateways)
        self._give_back = GiveBack(engine, gateways)
        self._terminal = TerminalActivities(engine, gateways)

    # ------------------------------------------------------------------ the janitor
    @activity.defn(name="resolve_stale_money")
    async def resolve_stale_money(self, request: JanitorInput) -> JanitorReport:
        """Look up every card-on-file attempt and refund pending for longer than `older_than_s`, and
        every counter sale its workflow left pending or in manual review for longer than
        `terminal_older_than_s`, and book what Gravity did (or close what it never saw); then
        recognize the deferred revenue whose month has begun, and fold the ledger's daily sums."""
        now = datetime.now(UTC)
        cutoff = now - timedelta(seconds=request.older_than_s)
        terminal_cutoff = now - timedelta(seconds=request.terminal_older_than_s)
        stale = await asyncio.to_thread(self._stale, cutoff, terminal_cutoff, request.limit)
        counts = {"booked": 0, "closed": 0, "refunds_done": 0, "refunds_failed": 0, "unresolved": 0}
        for item in stale:
            activity.heartbeat(item.id)
            try:
                found = await self._gateways.for_oid(item.oid).lookup(item.external_transaction_id)
            except GravityError:
                counts["unresolved"] += 1
                continue
            counts[await self._resolve(item, found)] += 1
        counts["recognized"] = await asyncio.to_thread(self._recognize_revenue, max(now, activity.info().current_attempt_scheduled_time), request.limit)
        await asyncio.to_thread(self._compact_ledger_days)
        return JanitorReport(**counts)

    def _compact_ledger_days(self) -> None:
        """Fold the ledger's daily sums written since the last run, so balances read a row a day."""
        with session_scope(self._engine) as session:
            ledger_days.compact(session)

    def _recognize_revenue(self, as_of: datetime, limit: int) -> int:
        """Post the months of deferred revenue begun by `as_of` (the server's clock when it runs
        ahead of the wall clock, as in simulated time), one invoice per database transaction."""
        with session_scope(self._engine) as session:
            deferred = deferred_invoices(session, as_of, limit=limit)
        posted = 0
        for one in deferred:
            with session_scope(self._engine) as session:
                posted += recognize_invoice(session, one, as_of)
        return posted

    def _stale(self, cutoff: datetime, terminal_cutoff: datetime, limit: int) -> list[_Stale]:
        with session_scope(self._engine) as session:
            oids = {loc.id: loc.gravity_oid for loc in session.exec(select(Location))}
            payments = session.exec(
                select(Payment)
                .where(Payment.status == PaymentStatus.PENDING, Payment.method == "card_on_file", Payment.created_at < cutoff)  # type: ignore[operator]
                .order_by(Payment.created_at)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            terminal_sales = session.exec(
                select(Payment)
                .where(Payment.status.in_((PaymentStatus.PENDING, PaymentStatus.UNKNOWN)), Payment.method == "terminal", Payment.created_at < terminal_cutoff)  # type: ignore[attr-defined, operator]
                .order_by(Payment.created_at)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            refunds = session.exec(
                select(Refund, Payment.location_id)
                .join(Payment, Payment.id == Refund.payment_id)  # type: ignore[arg-type]
                .where(Refund.status == RefundStatus.PENDING, Refund.created_at < cutoff)  # type: ignore[operator]
                .order_by(Refund.created_at)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            return [
                *(_Stale("payment", p.id, p.external_transaction_id, oids[p.location_id], p.purpose) for p in payments),
                *(_Stale("terminal", p.id, p.external_transaction_id, oids[p.location_id], p.purpose) for p in terminal_sales),
                *(_Stale("refund", r.id, r.external_transaction_id, oids[location_id]) for r, location_id in refunds),
            ]

    async def _resolve(self, item: _Stale, found: TransactionResult | None) -> str:
        if item.kind == "refund":
            return await asyncio.to_thread(self._resolve_refund, item.id, found)
        if found is None:
            await asyncio.to_thread(self._close_unsent, item.id)
            return "closed"
        if item.kind == "terminal":
            # The terminal's own booking: facts first, a deposit credited, any excess given back.
            await self._terminal.record_terminal_result(TerminalRecord(item.id, gateway_result(found)))
            return "booked"
        if item.purpose == "deposit":
            await asyncio.to_thread(self._deposits.record, item.id, found)
            return "booked"
        _, booking = await asyncio.to_thread(self._collector.record, item.id, found, await asyncio.to_thread(self._stream_of, item.id))
        if booking.returning:
            await self._give_back.return_excess(item.id)
        return "booked"

    def _stream_of(self, payment_id: str) -> str:
        with session_scope(self._engine) as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            return event_stream(payment.subscription_id, payment.client_id)

    def _close_unsent(self, payment_id: str) -> None:
        with session_scope(self._engine) as session:
            payment = lock_payment(session, payment_id)
            close_attempt(session, payment, status=PaymentStatus.FAILED, message="not sent: Gravity never saw this attempt (closed by the janitor)")
            emit(
                session,
                type="payment.closed_unsent",
                stream=_stream(payment),
                payload={"payment_id": payment.id, "invoice_id": payment.invoice_id, "external_transaction_id": payment.external_transaction_id},
                dedupe_key=payment_closed_unsent_event_key(payment.id),
            )

    def _resolve_refund(self, refund_id: str, found: TransactionResult | None) -> str:
        with session_scope(self._engine) as session:
            refund = lock_refund(session, refund_id)
            if found is not None and found.approved:
                record_refund_done(session, refund, unique_trans_id=found.unique_trans_id)
                return "refunds_done"
            message = found.result_message if found is not None else "Gravity never saw this refund (closed by the janitor)"
            record_refund_failed(session, refund, message=message)
            return "refunds_failed"

    # ------------------------------------------------------------------ the daily reconciliation
    @activity.defn(name="reconcile_day")
    async def reconcile_day(self, request: ReconciliationInput) -> ReconciliationReport:
        """Reconcile one day (`operations.period_reconciliation`, what `billing reconcile` and the
        API run) and raise a `reconciliation.difference` event for each difference; the scheduled
        run (no day) takes each location's newest ended local day, so none is checked half-way."""
        beat = lambda done, _: activity.heartbeat(done)  # noqa: E731
        if request.day is not None:
            result = await reconcile_period(self._engine, self._gateways, request.day, request.day, progress=beat)
        else:
            result = await reconcile_ended_days(self._engine, self._gateways, self._clock(), progress=beat)
        day = result.end
        differences = [_difference_line(m) for m in result.differences]
        if result.double_charges:
            differences.append(f"double charges in the gateway's list: {result.double_charges}")
        await asyncio.to_thread(self._report, day, len(result.movements), differences)
        days = sorted({result.start, result.end})
        return ReconciliationReport(day, len(result.movements), differences, days=days)

    def _report(self, day: date, checked: int, differences: list[str]) -> None:
        with session_scope(self._engine) as session:
            for index, difference in enumerate(differences):
                emit(
                    session,
                    type="reconciliation.difference",
                    stream=RECONCILIATION_STREAM,
                    payload={"day": day.isoformat(), "difference": difference},
                    dedupe_key=reconciliation_difference_event_key(day, index, difference),
                )
            emit(
                session,
                type="reconciliation.completed",
                stream=RECONCILIATION_STREAM,
                payload={"day": day.isoformat(), "checked": checked, "differences": len(differences)},
                dedupe_key=reconciliation_completed_event_key(day, checked, len(differences)),
            )


def _difference_line(movement: Movement) -> str:
    """One difference as the `reconciliation.difference` event has always worded it (cents)."""
    where = f"{movement.kind} {movement.external_transaction_id}"
    if movement.status == "unreachable":
        return f"{where}: could not be looked up"
    ours = "none" if movement.ours_cents is None else f"{movement.ours_cents} cents"
    return f"{where}: ours {ours}, gateway {movement.gateway_cents or 0} cents"


def _stream(payment: Payment) -> str:
    return event_stream(payment.subscription_id, payment.client_id)
