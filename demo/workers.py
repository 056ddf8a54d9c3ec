"""Extra worker processes for the demo: one Python worker is about one core of workflow work (the
GIL), so a larger demo spreads its subscriptions over more than one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from foundation.settings import SANDBOX_TOKEN

WORKERS_START_S = 120.0


@contextlib.contextmanager
def extra_workers(
    count: int,
    *,
    database_url: str,
    temporal_address: str,
    namespace: str,
    task_queue: str,
    gravity_url: str,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `billing worker` processes on the demo's task queue, stopped when the block ends."""
    env = {
        **os.environ,
        "BILLING_DATABASE_URL": database_url,
        "BILLING_TEMPORAL_ADDRESS": temporal_address,
        "BILLING_TEMPORAL_NAMESPACE": namespace,
        "BILLING_TEMPORAL_TASK_QUEUE": task_queue,
        "BILLING_GRAVITY_BASE_URL": gravity_url,
        "BILLING_GRAVITY_TOKEN": SANDBOX_TOKEN,
        "BILLING_GRAVITY_SANDBOX_CLOCK": "true",  # the sandbox dates the simulated year's sales
    }
    env.pop("DATABASE_URL", None)
    env.pop("TEMPORAL_ADDRESS", None)
    processes = [
        subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def until_polling(client: Client, task_queue: str, count: int, *, bound_s: float = WORKERS_START_S) -> None:
    """Wait until `count` workers poll `task_queue` for workflow tasks.

    Why: a workflow sticks to the worker that ran its first task, so subscriptions enrolled while the
    extra processes were still importing all stayed on the demo's own worker, and one core did the
    year's work."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + bound_s
    while True:
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        if len({poller.identity for poller in pollers}) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not all poll task queue {task_queue} within {bound_s:.0f} s (saw {len(pollers)})")
        await asyncio.sleep(0.2)
