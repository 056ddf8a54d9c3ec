"""A worker in its own process, for the test that SIGKILLs one mid-way through a saga.

Usage: python -m tests.payments.saga_worker TEMPORAL_ADDRESS DATABASE_URL GRAVITY_BASE_URL TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import sys

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from models.db import get_engine
from worker import build_worker, connect


async def main(address: str, database_url: str, base_url: str, task_queue: str) -> None:
    client = await connect(address, "default")
    gateways = GatewayDirectory(base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    worker = build_worker(client, get_engine(database_url), gateways, task_queue=task_queue)
    print("worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
