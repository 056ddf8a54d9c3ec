"""What one workflow run cost (closed or still running), read from its Temporal history.

Used by the benchmark (events, workflow tasks and activities per cycle) and the scale-out test
(which worker identity ran each activity, local ones included), so both read the server's record, not our own counters.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from operations.history.markers import LOCAL_ACTIVITY_MARKER

E = EventType


@dataclass(frozen=True)
class RunCost:
    events: int
    workflow_tasks: int
    activities: int  # scheduled activities + local activities (markers)
    local_activities: int
    timers: int
    continued: bool  # this run was itself started by continue-as-new


def cost_of(history: WorkflowHistory) -> RunCost:
    kinds = Counter(event.event_type for event in history.events)
    local = sum(1 for event in history.events if _is_local_activity(event))
    first = history.events[0].workflow_execution_started_event_attributes if history.events else None
    return RunCost(
        events=len(history.events),
        workflow_tasks=kinds[E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        activities=kinds[E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] + local,
        local_activities=local,
        timers=kinds[E.EVENT_TYPE_TIMER_STARTED],
        continued=bool(first and first.continued_execution_run_id),
    )


async def matching_runs(client: Client, query: str, *, limit: int | None = None) -> list[tuple[str, str]]:
    """(workflow id, run id) of the runs matching a visibility query."""
    runs = []
    async for execution in client.list_workflows(query):
        runs.append((execution.id, execution.run_id))
        if limit is not None and len(runs) >= limit:
            break
    return runs


async def histories(client: Client, runs: Sequence[tuple[str, str]], *, concurrency: int = 16) -> list[WorkflowHistory]:
    gate = asyncio.Semaphore(concurrency)

    async def fetch(workflow_id: str, run_id: str) -> WorkflowHistory:
        async with gate:
            return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()

    return list(await asyncio.gather(*(fetch(w, r) for w, r in runs)))


def mean_cost(costs: Sequence[RunCost]) -> dict[str, float]:
    if not costs:
        return {"events": 0.0, "workflow_tasks": 0.0, "activities": 0.0, "local_activities": 0.0, "timers": 0.0}
    count = len(costs)
    return {
        "events": sum(c.events for c in costs) / count,
        "workflow_tasks": sum(c.workflow_tasks for c in costs) / count,
        "activities": sum(c.activities for c in costs) / count,
        "local_activities": sum(c.local_activities for c in costs) / count,
        "timers": sum(c.timers for c in costs) / count,
    }


def activity_identities(history: WorkflowHistory) -> list[str]:
    """The worker identity that ran each activity recorded in the history: for an activity task, the
    worker that started it; for a local activity, the worker whose workflow task recorded its
    marker (a local activity runs in the worker that holds the workflow task)."""
    completed_by = {
        event.event_id: event.workflow_task_completed_event_attributes.identity
        for event in history.events
        if event.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }
    identities = []
    for event in history.events:
        if event.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            identities.append(event.activity_task_started_event_attributes.identity)
        elif _is_local_activity(event):
            identities.append(completed_by.get(event.marker_recorded_event_attributes.workflow_task_completed_event_id, ""))
    return identities


def _is_local_activity(event: HistoryEvent) -> bool:
    """A local activity's marker (other markers are patches: versioning, not work)."""
    return event.event_type == E.EVENT_TYPE_MARKER_RECORDED and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
