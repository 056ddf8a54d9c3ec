"""Giving money back through Gravity, exactly once per refund key.

Same shape as `card_charges`: reserve and write the refund row first (committed), look the id up
before re-sending after any earlier try, then record Gravity's answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from books.refunds import RefundRefused, lock_refund, record_refund_done, record_refund_failed, start_refund
from foundation.ids import external_id
from foundation.statuses import RefundStatus
from foundation.telemetry import counters
from gravity.client import GravityClient
from gravity.directory import GatewayDirectory
from gravity.errors import PermanentGravityError
from gravity.results import TransactionResult
from models.billing import Payment, Refund
from models.clinic import Location
from models.db import session_scope


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    kind: str
    status: str  # a RefundStatus: DONE or FAILED
    amount_cents: int
    message: str = ""


class Refunder:
    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._engine = engine
        self._gateways = gateways

    async def give_back(self, *, payment_id: str, amount_cents: int, kind: str, attempt_key: str, reason: str, at: datetime | None = None) -> RefundOutcome:
        """Void (`kind="void"`, whole sale) or refund (`kind="refund"`, any part) a payment, the
        books dated `at` (None: the database's now()). The
        database steps run in threads and heartbeats cover every phase, so a slow database neither
        stalls the worker's event loop nor looks like a dead worker."""
        async with heartbeating():
            refund, fresh, sale_id, oid = await asyncio.to_thread(self._start, payment_id, amount_cents, kind, attempt_key, reason, at)
            if refund.status in (RefundStatus.DONE, RefundStatus.FAILED):
                return RefundOutcome(refund.id, refund.kind, refund.status, refund.amount_cents, refund.reason)
            gateway = self._gateways.for_oid(oid)
            try:
                result = await self.send(gateway, kind, sale_id, refund, look_up_first=not fresh)
            except PermanentGravityError as error:
                await asyncio.to_thread(self._fail, refund.id, str(error), at)
                raise ApplicationError(f"Gravity refused the {kind}: {error}", type="GravityPermanent", non_retryable=True) from None
            return await asyncio.to_thread(self._record, refund.id, result, at)

    def _start(self, payment_id: str, amount_cents: int, kind: str, attempt_key: str, reason: str, at: datetime | None) -> tuple[Refund, bool, str | None, str]:
        """The refund row (reserved, committed before anything is sent), whether it is new, the
        sale it gives back and the merchant's OID."""
        try:
            with session_scope(self._engine, at=at) as session:
                refund, fresh = start_refund(
                    session,
                    payment_id=payment_id,
                    amount_cents=amount_cents,
                    kind=kind,
                    attempt_key=attempt_key,
                    external_transaction_id=external_id(attempt_key),
                    reason=reason,
                )
                payment = session.get(Payment, payment_id)
                assert payment is not None
                location = session.get(Location, payment.location_id)
                assert location is not None
                return refund, fresh, payment.gravity_unique_trans_id, location.gravity_oid
        except RefundRefused as error:
            raise ApplicationError(str(error), type="InvalidCommand", non_retryable=True) from None

    async def send(self, gateway: GravityClient, kind: str, sale_id: str | None, refund: Refund, *, look_up_first: bool) -> TransactionResult:
        if sale_id is None:
            raise ApplicationError("the payment has no Gravity transaction to give back", type="InvalidCommand", non_retryable=True)
        if kind == "void":
            return await gateway.void_safely(unique_trans_id=sale_id, external_id=refund.external_transaction_id, look_up_first=look_up_first)
        return await gateway.refund_safely(
            unique_trans_id=sale_id, amount_cents=refund.amount_cents, external_id=refund.external_transaction_id, look_up_first=look_up_first
        )

    def _record(self, refund_id: str, result: TransactionResult, at: datetime | None) -> RefundOutcome:
        with session_scope(self._engine, at=at) as session:
            refund = lock_refund(session, refund_id)
            if result.approved:
                record_refund_done(session, refund, unique_trans_id=result.unique_trans_id)
            else:
                record_refund_failed(session, refund, message=result.result_message)
            outcome = RefundOutcome(refund.id, refund.kind, refund.status, refund.amount_cents, result.result_message)
        counters().give_back(kind=outcome.kind, status=outcome.status)  # after the commit: a count is a recorded answer
        return outcome

    def _fail(self, refund_id: str, message: str, at: datetime | None) -> None:
        with session_scope(self._engine, at=at) as session:
            refund = lock_refund(session, refund_id)
            record_refund_failed(session, refund, message=message)
