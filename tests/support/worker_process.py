"""A worker in its own OS process, so a test can SIGKILL it mid-charge.

python -m tests.support.worker_process DATABASE_URL TEMPORAL_ADDRESS TASK_QUEUE GRAVITY_BASE_URL
"""

from __future__ import annotations

import asyncio
import sys

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from worker import run_worker


def main() -> None:
    database_url, temporal_address, task_queue, gravity_url = sys.argv[1:5]
    gateways = GatewayDirectory(gravity_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    print("worker ready", flush=True)
    asyncio.run(run_worker(database_url, temporal_address, namespace="default", task_queue=task_queue, gateways=gateways))


if __name__ == "__main__":
    main()
