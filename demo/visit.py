"""The demo's visit day: a workflow that sleeps to a day of the simulated year, then runs the front
desk's money movements there as its children, one at a time, as the demo hands them over.

Why a parent: under the dev server's per-workflow time skipping a child starts on its parent's
virtual clock, so the terminal payment, refund and cancellation (and the books and the sandbox's
sales they write) land on the visit day instead of the real today. Deterministic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow


def visit_queue_of(task_queue: str) -> str:
    """The visit day's own task queue beside a demo run's `task_queue` (served in the demo's process)."""
    return f"{task_queue}-visit"


@dataclass(frozen=True)
class Step:
    """Run `workflow` (by name) with `arg` as the child `child_id` on `task_queue`."""

    workflow: str
    arg: Any
    child_id: str
    task_queue: str


@workflow.defn(name="DemoVisitDay")
class VisitDayWorkflow:
    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._closed = False

    @workflow.signal
    def step(self, step: Step) -> None:
        self._steps.append(step)

    @workflow.signal
    def close(self) -> None:
        """No more steps: the visit ends once the ones handed over have run."""
        self._closed = True

    @workflow.run
    async def run(self, after_s: float) -> int:
        """Sleep `after_s` simulated seconds, then run the steps in order; return how many ran."""
        await workflow.sleep(timedelta(seconds=after_s))
        ran = 0
        while True:
            await workflow.wait_condition(lambda: bool(self._steps) or self._closed)
            if not self._steps:
                return ran
            step = self._steps.pop(0)
            # Awaited: a parent that ended would take its running children with it.
            await workflow.execute_child_workflow(step.workflow, step.arg, id=step.child_id, task_queue=step.task_queue)
            ran += 1
