"""The demo waits on what it needs, each wait with a bound that names what it waited for: the worker
processes polling before anyone enrolls, and every story's end; and it says how far it has come."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from demo.play import DemoOptions, play_bound, until_all_end
from demo.progress import Reached, progress_line
from demo.workers import until_polling
from tests.conftest import TASK_QUEUE


async def test_waits_for_the_workers_polling_and_names_the_queue_when_none_comes(temporal_env: WorkflowEnvironment, billing_worker: Worker) -> None:
    await until_polling(temporal_env.client, TASK_QUEUE, 1, bound_s=30)
    lonely = f"billing-demo-{uuid.uuid4().hex[:6]}"
    with pytest.raises(RuntimeError, match=f"2 workers did not all poll task queue {lonely} within 1 s"):
        await until_polling(temporal_env.client, lonely, 2, bound_s=1)


async def test_the_stories_bound_names_those_still_playing() -> None:
    async def quick() -> None:
        await asyncio.sleep(0.01)

    async def stuck() -> None:
        await asyncio.sleep(3600)

    stories = {asyncio.create_task(quick()): "cli_demo_0000 (ordinary)", asyncio.create_task(stuck()): "cli_demo_0001 (exhausted)"}
    with pytest.raises(
        RuntimeError, match=r"waited 1 s for every story to end; still playing: cli_demo_0001 \(exhausted\) \(their workflows are on task queue q\)"
    ):
        await until_all_end(stories, 1.0, "q")
    assert all(task.done() for task in stories)


async def test_a_failing_story_ends_the_wait_at_once() -> None:
    async def fails() -> None:
        raise ValueError("declined for good")

    async def stuck() -> None:
        await asyncio.sleep(3600)

    stories = {asyncio.create_task(fails()): "a", asyncio.create_task(stuck()): "b"}
    with pytest.raises(ValueError, match="declined for good"):
        await asyncio.wait_for(until_all_end(stories, 600.0, "q"), timeout=10)


def test_the_bound_is_generous_and_grows_with_the_year() -> None:
    assert play_bound(DemoOptions(clients=500, months=12)) >= 1200 > play_bound(DemoOptions(clients=50, months=12)) >= 300


def test_the_progress_line_says_date_cycles_stories_and_time() -> None:
    line = progress_line(Reached(1204, date(2027, 3, 1), date(2027, 9, 14)), done=120, total=501, elapsed_s=31.4)
    assert line == "simulated date reached 2027-03-01 (furthest 2027-09-14), 1,204 cycles billed, 120/501 stories done, 31 s"
    assert progress_line(Reached(0, None, None), done=0, total=9, elapsed_s=2).startswith("simulated date reached not yet, 0 cycles billed")
