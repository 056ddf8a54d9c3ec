"""One durable workflow per refund asked for at the front desk: part or all of a card payment, or
what is left of a deposit.

Why a workflow: the refund's row and its reservation are written before Gravity is called, so the
movement must reach Gravity's answer even if the API request, the worker or the gateway dies
half-way; run inline in a request, a crash left a pending refund holding its reservation forever
(and that blocked voiding the invoice). The activity is the existing give-back (a void while
Gravity allows one, else a refund) keyed by the request, so a retry finds its own rows and looks
the refund up before it would send again. Refusals and Gravity's refusals come back as results.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.money_movements import MoneyMovementActivities
    from foundation.contracts import RefundRequest, RefundResult
    from foundation.ids import refund_workflow_id  # noqa: F401 - re-exported for callers
    from workflows.retries import FRONT_DESK_MONEY_RETRY

# Each try: a void, then perhaps a refund, each with its lookups; the heartbeat notices a dead worker.
TRY_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name="Refund")
class RefundWorkflow:
    @workflow.run
    async def run(self, request: RefundRequest) -> RefundResult:
        activity = MoneyMovementActivities.refund_deposit if request.deposit_id is not None else MoneyMovementActivities.refund_payment
        return await workflow.execute_activity_method(
            activity,
            dataclasses.replace(request, at=workflow.now()),  # the books' date
            start_to_close_timeout=TRY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=FRONT_DESK_MONEY_RETRY,
        )
