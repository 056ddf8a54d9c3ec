"""Activities of the subscription workflow: the database and Gravity work of one billing cycle.

`charge_cycle` is the one activity an ordinary cycle costs. It is idempotent end to end: the invoice
is keyed by cycle (UNIQUE), the charge attempt by (subscription, period start, attempt number), and
`CardCollector` looks an attempt's id up at Gravity before it would ever send it twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity

from activities.card_charges import CardCollector
from activities.heartbeat import heartbeating
from activities.moment import activity_time, dated
from books.balances import open_balance
from books.charges import ToSend, open_card_attempt
from books.cycles import invoice_cycle
from books.renewals import renewal_terms
from foundation.contracts import ChargeAsked, ChargeOutcome, ChargeRequest, RenewalAsk, RenewalTerms, StatusChange
from foundation.ids import charge_key, invoice_id_for_cycle, invoice_retry_key, subscription_stream
from foundation.statuses import ChargeResult, SubscriptionStatus
from foundation.telemetry import log_context
from gravity.directory import GatewayDirectory
from models.db import session_scope
from models.outbox import emit
from models.subscriptions import Subscription, live_subscription_ids


class SubscriptionActivities:
    """Holds the worker's database engine and Gravity clients; each method is one activity."""

    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._collector = CardCollector(engine, gateways)

    @activity.defn(name="charge_cycle")
    async def charge_cycle(self, request: ChargeRequest) -> ChargeOutcome:
        """Invoice the cycle (once), apply client credit, then try to collect with attempt `attempt`,
        the invoicing and the attempt's payment row in one database transaction (or retry the
        subscription's one-off invoice the request names). The outcome says
        which charge it answers (`ChargeAsked`) for the audit trail."""
        with dated(request.at) as at:
            return replace(await self._charge(request, at), asked=ChargeAsked.of(request))

    async def _charge(self, request: ChargeRequest, at: datetime | None) -> ChargeOutcome:
        if request.attempt == 0:
            invoice_id, balance = await asyncio.to_thread(self._invoice_cycle, request, at)
            return ChargeOutcome(invoice_id, ChargeResult.PAID if balance == 0 else ChargeResult.NOT_CHARGED, balance)
        stream = subscription_stream(request.subscription_id)
        if request.invoice_id is not None:
            return await self._collector.collect(
                invoice_id=request.invoice_id,
                card_id=request.card_id,
                attempt_key=invoice_retry_key(request.invoice_id, request.attempt),
                attempt=request.attempt,
                when=request.attempt_at or request.due_at,
                stream=stream,
                at=at,
            )
        invoice_id = invoice_id_for_cycle(request.subscription_id, request.period_start)
        with log_context(invoice_id=invoice_id):
            # Heartbeats cover the database steps too (see `CardCollector.collect`).
            async with heartbeating():
                opened = await asyncio.to_thread(self._invoice_and_open_attempt, request, at)
                return await self._collector.send(opened, invoice_id=invoice_id, attempt=request.attempt, stream=stream, at=at)

    def _invoice_and_open_attempt(self, request: ChargeRequest, at: datetime | None) -> ChargeOutcome | ToSend:
        """The cycle's invoice and the attempt's payment row in one database transaction, which
        saves a commit and the re-reads a second transaction would need."""
        with session_scope(self._engine, at=at) as session:
            cycle = invoice_cycle(session, request)
            return open_card_attempt(
                session,
                cycle.invoice,
                card_id=request.card_id,
                attempt_key=charge_key(request.subscription_id, request.period_start, request.attempt),
                attempt=request.attempt,
                when=max(request.due_at, request.attempt_at or request.due_at),
                site=cycle.site,
                new_invoice=cycle.new_invoice,
            )

    def _invoice_cycle(self, request: ChargeRequest, at: datetime | None) -> tuple[str, int]:
        """Attempt 0: invoice the cycle (and apply credit) without charging."""
        with session_scope(self._engine, at=at) as session:
            invoice = invoice_cycle(session, request).invoice
            return invoice.id, open_balance(invoice)

    @activity.defn(name="live_subscription_ids")
    async def live_subscription_ids(self, location_id: str) -> list[str]:
        """The location's subscriptions that can still bill (for the charging-enabled broadcast)."""
        return await asyncio.to_thread(self._live_at, location_id)

    def _live_at(self, location_id: str) -> list[str]:
        with session_scope(self._engine) as session:
            return live_subscription_ids(session, location_id)

    @activity.defn(name="renewal_terms")
    async def renewal_terms(self, ask: RenewalAsk) -> RenewalTerms:
        """At a term's end: the plan version the next term bills, pinned on the subscription row."""
        return await asyncio.to_thread(self._renewal_terms, ask)

    def _renewal_terms(self, ask: RenewalAsk) -> RenewalTerms:
        with session_scope(self._engine) as session:
            return renewal_terms(session, ask)

    @activity.defn(name="mirror_status")
    async def mirror_status(self, change: StatusChange) -> None:
        """Write the workflow's decision to the subscription row and the outbox, together."""
        await asyncio.to_thread(self._mirror_status, change)

    def _mirror_status(self, change: StatusChange) -> None:
        at = activity_time(change.at)
        with session_scope(self._engine, at=at) as session:
            sub = session.exec(select(Subscription).where(Subscription.id == change.subscription_id).with_for_update()).one()
            now = at or datetime.now(UTC)
            # The workflow calls a subscription that has not billed yet "active"; its row stays
            # "pending" until the first charge makes it active.
            if not (sub.status == SubscriptionStatus.PENDING and change.status == SubscriptionStatus.ACTIVE):
                sub.status = change.status
            if change.cancel_at_term_end is not None:
                sub.cancel_at_term_end = change.cancel_at_term_end
            if change.next_due_at is not None:
                sub.next_due_at = change.next_due_at
            if change.status == SubscriptionStatus.CANCELLED and sub.cancelled_at is None:
                sub.cancelled_at = now
            sub.updated_at = now
            session.add(sub)
            if change.event_type:
                emit(
                    session,
                    type=change.event_type,
                    stream=subscription_stream(sub.id),
                    payload={"status": change.status, "detail": change.detail},
                    dedupe_key=change.event_key,
                )
