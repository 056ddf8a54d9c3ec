"""The HTTP API in a process of its own, for the test that SIGKILLs it in the middle of a refund.

Usage: python -m tests.api.api_process TEMPORAL_ADDRESS DATABASE_URL GRAVITY_BASE_URL TASK_QUEUE
Prints "api ready <port>" once it listens on a free loopback port.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from api.app import create_app
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from models.db import get_engine
from tests.api.conftest import test_settings
from worker import connect


async def main(address: str, database_url: str, base_url: str, task_queue: str) -> None:
    client = await connect(address, "default")
    gateways = GatewayDirectory(base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    app = create_app(get_engine(database_url), client, test_settings(), task_queue=task_queue, gateways=gateways)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print("api ready", server.servers[0].sockets[0].getsockname()[1], flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
