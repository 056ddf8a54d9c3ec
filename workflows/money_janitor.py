"""Two small workflows that Temporal Schedules start: the janitor (every few minutes) and the daily
reconciliation. Each is one activity; a Schedule, not a sleeping loop, keeps them coming, so a
deploy or an outage never leaves one stuck and each run's history is one line of the audit trail."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.janitor import JanitorActivities
    from foundation.contracts import JanitorInput, JanitorReport, ReconciliationInput, ReconciliationReport
    from workflows.retries import SWEEP_RETRY

SWEEP_TIMEOUT = timedelta(minutes=20)
SWEEP_HEARTBEAT = timedelta(seconds=60)


@workflow.defn(name="MoneyJanitor")
class MoneyJanitorWorkflow:
    @workflow.run
    async def run(self, request: JanitorInput) -> JanitorReport:
        return await workflow.execute_activity_method(
            JanitorActivities.resolve_stale_money,
            request,
            start_to_close_timeout=SWEEP_TIMEOUT,
            heartbeat_timeout=SWEEP_HEARTBEAT,
            retry_policy=SWEEP_RETRY,
        )


@workflow.defn(name="DailyReconciliation")
class DailyReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconciliationInput) -> ReconciliationReport:
        return await workflow.execute_activity_method(
            JanitorActivities.reconcile_day,
            request,
            start_to_close_timeout=SWEEP_TIMEOUT,
            heartbeat_timeout=SWEEP_HEARTBEAT,
            retry_policy=SWEEP_RETRY,
        )
