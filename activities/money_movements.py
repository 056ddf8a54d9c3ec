"""The activities of the refund and card-deposit workflows, thin over `GiveBack` and `DepositTaker`.

What is refused here (another refund took the money between the service layer's check and this
step, the card was disabled meanwhile) and what Gravity refuses for good are returned as results,
so the workflow ends with an answer the API can give; transient faults are raised and retried by
Temporal with the same attempt keys.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deposits import DepositTaker
from activities.invoice_compensation import GiveBack
from activities.moment import dated
from books.deposits import DepositRefused
from books.refunds import RefundRefused
from foundation.contracts import CardDepositRequest, DepositOutcome, GiveBackOutcome, RefundRequest, RefundResult
from foundation.ids import attempt_payment_id, card_deposit_key, customer_refund_key
from foundation.statuses import PaymentResult, RefundResultStatus
from gravity.directory import GatewayDirectory

REFUSALS = ("InvalidCommand", "NotFound")


class MoneyMovementActivities:
    def __init__(self, engine: Engine, gateways: GatewayDirectory) -> None:
        self._give_back = GiveBack(engine, gateways)
        self._deposits = DepositTaker(engine, gateways)

    @activity.defn(name="refund_payment")
    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        """Void or refund (part of) a card payment, once per request key."""
        assert request.payment_id is not None
        with dated(request.at) as at:
            given = self._give_back.give_back(
                payment_id=request.payment_id,
                amount_cents=request.amount_cents,
                key=customer_refund_key(request.payment_id, request.request_key),
                reason=request.reason or "refund at the counter",
                at=at,
            )
            return await _refund_result(request.payment_id, given)

    @activity.defn(name="refund_deposit")
    async def refund_deposit(self, request: RefundRequest) -> RefundResult:
        """Give back what is left of a deposit to the card that paid it, once per request key."""
        assert request.deposit_id is not None
        with dated(request.at) as at:
            return await _refund_result(None, self._deposits.refund_unused(deposit_id=request.deposit_id, request_key=request.request_key, at=at))

    @activity.defn(name="take_card_deposit")
    async def take_card_deposit(self, request: CardDepositRequest) -> DepositOutcome:
        """Charge a deposit to a saved card, once per request key."""
        with dated(request.at) as at:
            return await self._take_card_deposit(request, at)

    async def _take_card_deposit(self, request: CardDepositRequest, at: datetime | None) -> DepositOutcome:
        payment_id = attempt_payment_id(card_deposit_key(request.client_id, request.request_key))
        try:
            return await self._deposits.take_from_card(
                client_id=request.client_id,
                card_id=request.card_id,
                amount_cents=request.amount_cents,
                request_key=request.request_key,
                at=at,
            )
        except DepositRefused as error:
            return DepositOutcome(payment_id, PaymentResult.REFUSED, 0, message=str(error))
        except ApplicationError as error:
            if error.type in REFUSALS:
                return DepositOutcome(payment_id, PaymentResult.REFUSED, 0, message=error.message)
            if error.type == "GravityPermanent":
                return DepositOutcome(payment_id, PaymentResult.FAILED, 0, message=error.message)
            raise


async def _refund_result(payment_id: str | None, given: Awaitable[GiveBackOutcome]) -> RefundResult:
    """A give-back's outcome, with refusals and Gravity's refusals as results rather than errors."""
    try:
        outcome = await given
    except (RefundRefused, DepositRefused) as error:
        return RefundResult(RefundResultStatus.REFUSED, payment_id, message=str(error))
    except ApplicationError as error:
        if error.type in REFUSALS:
            return RefundResult(RefundResultStatus.REFUSED, payment_id, message=error.message)
        if error.type == "GravityPermanent":
            return RefundResult(RefundResultStatus.FAILED, payment_id, message=error.message)
        raise
    if outcome.kind == "none":
        return RefundResult(RefundResultStatus.REFUSED, outcome.payment_id, message=f"payment {outcome.payment_id} has nothing left to refund")
    return RefundResult(RefundResultStatus.DONE, outcome.payment_id, outcome.kind, outcome.amount_cents, outcome.refund_id)
