"""The Temporal worker: runs the subscription workflows and their activities.

`python worker.py` (or `billing worker`) connects to the configured Temporal and PostgreSQL, or
starts the embedded ones when they are not configured. Scale out by starting more workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.gateways import GatewayDirectory
from activities.subscription_commands import SubscriptionCommandActivities
from activities.subscriptions import SubscriptionActivities
from workflows.subscription import SubscriptionWorkflow

WORKFLOWS: Sequence[type] = (SubscriptionWorkflow,)


def activities_for(engine: Engine, gateways: GatewayDirectory) -> list[object]:
    """Every activity the engine runs, bound to this worker's database engine and Gravity clients."""
    billing = SubscriptionActivities(engine, gateways)
    commands = SubscriptionCommandActivities(engine, gateways)
    return [
        billing.charge_cycle,
        billing.mirror_status,
        commands.change_card,
        commands.cancel_subscription,
        commands.change_plan,
    ]


def build_worker(client: Client, engine: Engine, gateways: GatewayDirectory, *, task_queue: str) -> Worker:
    """A worker for `task_queue`. Activities are async (I/O bound) and share the event loop; the
    synchronous database calls inside them are short."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(engine, gateways),
        max_concurrent_activities=50,
        max_concurrent_workflow_tasks=50,
    )


async def connect(address: str, namespace: str) -> Client:
    """A Temporal client with the data converter every part of the engine must share."""
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)


async def run_worker(database_url: str, temporal_address: str, *, namespace: str, task_queue: str, gateways: GatewayDirectory) -> None:
    from models.db import get_engine

    client = await connect(temporal_address, namespace)
    engine = get_engine(database_url)
    worker = build_worker(client, engine, gateways, task_queue=task_queue)
    try:
        await worker.run()
    finally:
        await gateways.aclose()


def main() -> None:
    from cli.worker_cmd import worker_command

    worker_command()


if __name__ == "__main__":
    main()
