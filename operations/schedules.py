"""The Temporal Schedules a worker deployment keeps: the money janitor and the daily reconciliation.

Created idempotently at worker start: a Schedule that exists already is left as it is (an operator
may have paused it or changed its spec), so starting many workers creates each one once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from foundation.contracts import JanitorInput, ReconciliationInput
from workflows.money_janitor import DailyReconciliationWorkflow, MoneyJanitorWorkflow

JANITOR_SCHEDULE = "money-janitor"
RECONCILIATION_SCHEDULE = "daily-reconciliation"
JANITOR_EVERY = timedelta(minutes=5)
RECONCILE_AT_UTC_HOUR = 7  # after every US clinic's day has ended and its batch has settled


def schedules(task_queue: str) -> dict[str, Schedule]:
    """Each Schedule by id. A run still going when the next is due is not doubled (SKIP)."""
    skip = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)
    return {
        JANITOR_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(MoneyJanitorWorkflow.run, JanitorInput(), id="money-janitor-run", task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=JANITOR_EVERY)]),
            policy=skip,
        ),
        RECONCILIATION_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(DailyReconciliationWorkflow.run, ReconciliationInput(), id="daily-reconciliation-run", task_queue=task_queue),
            spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(RECONCILE_AT_UTC_HOUR)], minute=[ScheduleRange(0)])]),
            policy=skip,
        ),
    }


async def ensure_schedules(client: Client, task_queue: str) -> list[str]:
    """Create the Schedules that do not exist yet; returns the ids created now."""
    created = []
    for schedule_id, schedule in schedules(task_queue).items():
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            continue
        created.append(schedule_id)
    return created
