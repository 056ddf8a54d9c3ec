"""A workflow that starts another one later in simulated time (time-skipping V2 environment): the
child inherits its parent's virtual clock, so a one-activity movement (a refund, a deposit) can run on
a day other than today, as the demo's simulated year needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow


@dataclass(frozen=True)
class Later:
    """Start `workflow` (by name) with `arg` as a child `after_s` simulated seconds from now."""

    after_s: float
    workflow: str
    arg: Any
    child_id: str
    task_queue: str


@workflow.defn(name="TestLater")
class LaterWorkflow:
    @workflow.run
    async def run(self, later: Later) -> Any:
        await workflow.sleep(timedelta(seconds=later.after_s))
        return await workflow.execute_child_workflow(later.workflow, later.arg, id=later.child_id, task_queue=later.task_queue)
