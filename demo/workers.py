"""Extra worker processes for the demo: one Python worker is about one core of workflow work (the
GIL), so a larger demo spreads its subscriptions over more than one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from foundation.settings import SANDBOX_TOKEN


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
