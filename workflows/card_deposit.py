"""One durable workflow per deposit charged to a saved card (client credit taken at the front desk).

Why a workflow: the deposit's payment row is written before the card is charged, so the charge must
reach Gravity's answer even if the API request or the worker dies half-way; a retry looks the
charge up before it would send again, and the same request key always names the same payment.
Declines and refusals come back as results.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.money_movements import MoneyMovementActivities
    from foundation.contracts import CardDepositRequest, DepositOutcome
    from foundation.ids import card_deposit_workflow_id  # noqa: F401 - re-exported for callers
    from workflows.retries import FRONT_DESK_MONEY_RETRY

TRY_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name="CardDeposit")
class CardDepositWorkflow:
    @workflow.run
    async def run(self, request: CardDepositRequest) -> DepositOutcome:
        return await workflow.execute_activity_method(
            MoneyMovementActivities.take_card_deposit,
            dataclasses.replace(request, at=workflow.now()),  # the books' date
            start_to_close_timeout=TRY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=FRONT_DESK_MONEY_RETRY,
        )
