"""Ending the workflows a demo run leaves running, so runs do not pile up live in the shared store.

Why terminate rather than a namespace of its own: the dev server `billing up` starts shares its
store with the demo, and the closed runs stay there for the Web UI and `billing --demo history`.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError

from demo.visit import visit_queue_of

REASON = "demo finished"


def running_on(task_queue: str) -> str:
    """The visibility query for the runs still open on a demo run's `task_queue` and its visit day's."""
    return f"TaskQueue IN ('{task_queue}', '{visit_queue_of(task_queue)}') AND ExecutionStatus = 'Running'"


async def terminate_running(client: Client, task_queue: str, *, reason: str = REASON) -> int:
    """Terminate every run still open on a demo run's queues; returns how many were ended."""
    ended = 0
    async for execution in client.list_workflows(running_on(task_queue)):
        try:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate(reason=reason)
        except RPCError:  # it closed meanwhile
            continue
        ended += 1
    return ended
