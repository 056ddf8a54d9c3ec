"""Telling every live subscription of a location that card-on-file charging is allowed again.

A workflow, not a loop in the API request: a request that dies half-way, or a subscription that
cannot be told at that moment, must not leave invoices waiting for ever. The workflow lists the
location's live subscriptions once and signals each; a finished subscription has nothing to learn.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.subscriptions import SubscriptionActivities
    from foundation.ids import charging_enabled_workflow_id, subscription_workflow_id  # noqa: F401 - the broadcast's id is re-exported
    from workflows.retries import DB_RETRY


@workflow.defn(name="ChargingEnabled")
class ChargingEnabledWorkflow:
    @workflow.run
    async def run(self, location_id: str) -> int:
        """Signal `charging_enabled` to every live subscription of the location; returns how many."""
        subscription_ids: list[str] = await workflow.execute_activity_method(
            SubscriptionActivities.live_subscription_ids, location_id, start_to_close_timeout=timedelta(seconds=60), retry_policy=DB_RETRY
        )
        told = 0
        for subscription_id in subscription_ids:
            try:
                await workflow.get_external_workflow_handle(subscription_workflow_id(subscription_id)).signal("charging_enabled")
                told += 1
            except Exception as error:  # noqa: BLE001 - a finished subscription has nothing to learn
                workflow.logger.info("subscription %s not signalled: %s", subscription_id, error)
        return told
