"""What must hold for the workflows after the chaos, read from Temporal's own record (histories).

- no activity (task or local) ran more than `MAX_ATTEMPTS` attempts: retries end (principle 14),
  and a step that keeps failing is a bug or an incident, never background noise. Counted apart:
  those still retrying when the run ended (a retry that never ends) and those that got through in
  the end (under time skipping a retry's backoff passes in simulated time, so a PostgreSQL outage
  of seconds is hours of retries: the caller decides whether such an outage explains them);
- every Update a run accepted also completed: none is left running when its workflow closed;
- every workflow of the run has closed, each subscription's in a final status (ended or cancelled),
  and one cancelled now stays cancelled (a command that was waiting cannot revive it);
- the database and each subscription's workflow agree on its status (the row vs the result).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError

from bench.histories import histories
from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES
from models.subscriptions import Subscription
from operations.history.markers import LOCAL_ACTIVITY_MARKER

MAX_ATTEMPTS = 20
E = EventType


@dataclass
class WorkflowVerdict:
    runs_checked: int = 0
    max_activity_attempts: int = 0
    retrying_over_limit: int = 0  # still retrying at the end, past MAX_ATTEMPTS
    completed_over_limit: int = 0  # ended (completed or failed) after more than MAX_ATTEMPTS
    many_attempts: list[str] = field(default_factory=list)  # each of those, for the caller to judge
    updates_left_running: int = 0
    workflows_still_running: int = 0
    status_disagreements: int = 0
    ended_not_final: int = 0
    problems: list[str] = field(default_factory=list)

    def ok(self, *, outage_explains_attempts: bool = False) -> bool:
        """All held; `outage_explains_attempts`: a PostgreSQL outage ran, so activities that got
        through after more than MAX_ATTEMPTS attempts are its doing (see the module docstring)."""
        return (
            self.retrying_over_limit == 0
            and (self.completed_over_limit == 0 or outage_explains_attempts)
            and self.updates_left_running == 0
            and self.workflows_still_running == 0
            and self.status_disagreements == 0
            and self.ended_not_final == 0
        )

    def counts(self) -> dict[str, int]:
        return {
            "runs_checked": self.runs_checked,
            "max_activity_attempts": self.max_activity_attempts,
            "activities_over_20_attempts": self.retrying_over_limit + self.completed_over_limit,
            "still_retrying_over_20_attempts": self.retrying_over_limit,
            "updates_left_running": self.updates_left_running,
            "workflows_still_running": self.workflows_still_running,
            "status_disagreements": self.status_disagreements,
            "ended_not_final": self.ended_not_final,
        }


@dataclass(frozen=True)
class _Run:
    workflow_id: str
    run_id: str
    running: bool


async def check_workflows(
    client: Client,
    engine: Engine,
    task_queue: str,
    statuses: Mapping[str, str],
    given_up: Mapping[str, str] | None = None,
    cancelled: Collection[str] = (),
) -> WorkflowVerdict:
    """Every run on `task_queue` (continued-as-new runs included); `statuses`: each subscription's
    final status as its workflow returned it; `given_up`: why the run stopped waiting for others;
    `cancelled`: the subscriptions a cancel-now was done for."""
    verdict = WorkflowVerdict()
    runs = await _runs(client, task_queue)
    verdict.runs_checked = len(runs)
    running = [r for r in runs if r.running]
    for run in running:
        verdict.workflows_still_running += 1
        reason = (given_up or {}).get(run.workflow_id.removeprefix("subscription:"), "")
        verdict.problems.append(f"workflow {run.workflow_id} still running" + (f": {reason}" if reason else ""))
    for run, history in zip(runs, await histories(client, [(r.workflow_id, r.run_id) for r in runs]), strict=True):
        _check_history(verdict, run, history)
    for workflow_id, name, attempt in await _pending_attempts(client, running):
        verdict.max_activity_attempts = max(verdict.max_activity_attempts, attempt)
        if attempt > MAX_ATTEMPTS:
            verdict.retrying_over_limit += 1
            verdict.problems.append(f"{workflow_id}: activity {name} still retrying at attempt {attempt}")
    _check_statuses(verdict, engine, statuses, cancelled)
    return verdict


async def stuck_workflows(handles: list[WorkflowHandle[Any, Any]]) -> dict[str, str]:
    """Subscription id -> why, for the workflows among `handles` whose pending activity has run
    more than MAX_ATTEMPTS attempts (its last failure says why)."""
    stuck: dict[str, str] = {}
    for handle in handles:
        for name, attempt, failure in await _pending(handle):
            if attempt > MAX_ATTEMPTS:
                stuck[handle.id.removeprefix("subscription:")] = f"activity {name} at attempt {attempt}: {failure}"[:300]
    return stuck


async def _pending_attempts(client: Client, runs: list[_Run]) -> list[tuple[str, str, int]]:
    """(workflow id, activity type, attempt) of every activity the running workflows are running."""
    found = []
    for run in runs:
        pending = await _pending(client.get_workflow_handle(run.workflow_id, run_id=run.run_id))
        found += [(run.workflow_id, name, attempt) for name, attempt, _ in pending]
    return found


async def _pending(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, int, str]]:
    """(activity type, attempt, last failure) of each activity the workflow is running now."""
    try:
        description = await handle.describe()
    except RPCError:
        return []
    return [
        (p.activity_type.name, int(p.attempt), p.last_failure.message if p.HasField("last_failure") else "")
        for p in description.raw_description.pending_activities
    ]


async def _runs(client: Client, task_queue: str) -> list[_Run]:
    runs = []
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        runs.append(_Run(execution.id, execution.run_id, execution.status == WorkflowExecutionStatus.RUNNING))
    return runs


def _check_history(verdict: WorkflowVerdict, run: _Run, history: WorkflowHistory) -> None:
    scheduled: dict[int, str] = {}
    accepted: set[str] = set()
    completed: set[str] = set()
    for event in history.events:
        if event.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted.add(event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id)
        elif event.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed.add(event.workflow_execution_update_completed_event_attributes.meta.update_id)
        attempt, name = _attempt_of(event, scheduled)
        verdict.max_activity_attempts = max(verdict.max_activity_attempts, attempt)
        if attempt > MAX_ATTEMPTS:
            verdict.completed_over_limit += 1
            why = _last_failure(event)
            verdict.many_attempts.append(f"{run.workflow_id}: activity {name} ran {attempt} attempts" + (f" (last failure: {why})" if why else ""))
    left = accepted - completed
    if left and not run.running:
        verdict.updates_left_running += len(left)
        verdict.problems.append(f"{run.workflow_id}: update(s) {', '.join(sorted(left))} accepted and never completed")


def _last_failure(event: HistoryEvent) -> str:
    """The failure an activity's attempt followed, as its started event records it ("" if none)."""
    if event.event_type != E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        return ""
    attrs = event.activity_task_started_event_attributes
    return attrs.last_failure.message[:200] if attrs.HasField("last_failure") else ""


def _attempt_of(event: HistoryEvent, scheduled: Mapping[int, str]) -> tuple[int, str]:
    """(attempt, activity type) of an activity's started event or a local activity's marker, else (0, "")."""
    if event.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        attrs = event.activity_task_started_event_attributes
        return int(attrs.attempt), scheduled.get(attrs.scheduled_event_id, "?")
    if event.event_type == E.EVENT_TYPE_MARKER_RECORDED:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == LOCAL_ACTIVITY_MARKER and "data" in marker.details and marker.details["data"].payloads:
            data = json.loads(marker.details["data"].payloads[0].data)
            return int(data.get("attempt") or 1), str(data.get("activity_type", "local"))
    return 0, ""


def _check_statuses(verdict: WorkflowVerdict, engine: Engine, statuses: Mapping[str, str], cancelled: Collection[str]) -> None:
    with Session(engine) as session:
        rows = {s.id: s.status for s in session.exec(select(Subscription).where(col(Subscription.id).in_(list(statuses))))}
    for subscription_id, status in sorted(statuses.items()):
        if rows.get(subscription_id) != status:
            verdict.status_disagreements += 1
            verdict.problems.append(f"{subscription_id}: the workflow ended {status}, the database says {rows.get(subscription_id)}")
        wanted = ("cancelled",) if subscription_id in cancelled else FINAL_SUBSCRIPTION_STATUSES
        if status not in wanted:
            verdict.ended_not_final += 1
            verdict.problems.append(f"{subscription_id}: the workflow ended {status}" + (" after a cancel-now" if subscription_id in cancelled else ""))
