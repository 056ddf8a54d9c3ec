"""The Temporal worker: runs the subscription, counter-payment and refund workflows and their activities.

`python worker.py` (or `billing worker`, which calls `serve`) connects to the configured Temporal and
PostgreSQL, or starts the embedded ones when they are not configured. Scale out by starting more workers.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import typer
from rich.console import Console
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.registry import WORKFLOWS, bound_activities
from cli.errors import handles_errors
from foundation.converter import data_converter
from foundation.settings import get_settings
from foundation.telemetry import Telemetry, configure_logging, current_telemetry, setup_telemetry
from gravity.directory import GatewayDirectory
from models.db import get_engine
from operations.schedules import ensure_schedules
from stack.embedded import EmbeddedStack, load_settings, redact_url
from stack.gravity_config import gateway_directory, uses_sandbox

# The sandbox re-imports a workflow's module for every new run. Ours are passed through instead: they
# hold no mutable module state, and `tests/policy/test_workflow_purity.py` checks they read no clock,
# randomness or I/O but through `workflow`. Passing them through spares a billing worker from
# re-importing `workflows.subscription` for every new subscription; the replay tests still run every
# recorded history in the full sandbox. The sandbox's runtime restrictions stay on. `foundation`
# (the contracts) must be visible in the sandbox's `sys.modules` too: pydantic resolves the
# contracts' annotations there when it decodes a workflow's input.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "foundation", "stack.search_attributes")
)


GRACEFUL_SHUTDOWN = timedelta(seconds=30)

console = Console(stderr=True, soft_wrap=True, highlight=False)


def build_worker(client: Client, engine: Engine, gateways: GatewayDirectory, *, task_queue: str) -> Worker:
    """A worker for `task_queue`. Activities are async (I/O bound) and share the event loop; the
    synchronous database calls inside them are short."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=bound_activities(engine, gateways),
        max_concurrent_activities=50,
        max_concurrent_local_activities=50,  # the subscription charge (one database connection each)
        max_concurrent_workflow_tasks=50,
        interceptors=_tracing_not_on(client),
        # A deploy lets in-flight charges and refunds finish (a charge answers within seconds)
        # instead of cutting them; what is still running after this is retried elsewhere.
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def _tracing_not_on(client: Client) -> list[Interceptor]:
    """The tracing interceptor for the worker when telemetry is on but the client does not carry
    it already (a worker uses its client's interceptors too: adding it twice would double spans)."""
    telemetry = current_telemetry()
    if not telemetry.enabled:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    if any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"]):
        return []
    return telemetry.temporal_interceptors()


async def connect(address: str, namespace: str, *, telemetry: Telemetry | None = None) -> Client:
    """A Temporal client with the data converter every part of the engine must share.

    With telemetry on (the given one, else the process's), the client carries Temporal's
    OpenTelemetry interceptor, so workers built on it trace workflows and activities too, and its
    runtime buffers the SDK's metrics for `Telemetry.temporal_metrics()`. Off: a plain client."""
    telemetry = telemetry or current_telemetry()
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter,
        interceptors=telemetry.temporal_interceptors(),
        runtime=telemetry.temporal_runtime(),
    )


async def run_worker(database_url: str, temporal_address: str, *, namespace: str, task_queue: str, gateways: GatewayDirectory) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    telemetry = setup_telemetry(settings, service_name="vet-billing-worker")
    client = await connect(temporal_address, namespace, telemetry=telemetry)
    engine = get_engine(database_url)
    worker = build_worker(client, engine, gateways, task_queue=task_queue)
    await ensure_schedules(client, task_queue)
    stop = stop_on_signals()
    try:
        async with telemetry.temporal_metrics(), worker:
            await stop.wait()
    finally:
        await gateways.aclose()
        telemetry.shutdown()


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so the worker shuts down through `async with worker` (polls
    ended, in-flight tasks finished or handed back). A KeyboardInterrupt raised through `worker.run()`
    instead left the SDK's runtime waiting on its threads at exit: `billing worker` never ended."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def serve() -> None:
    """Run a worker against the configured Temporal and PostgreSQL (or start the embedded ones).

    Stops cleanly on Ctrl-C or SIGTERM: in-flight activities finish or are retried elsewhere.
    """
    settings = load_settings()
    with EmbeddedStack(settings) as addresses:
        assert addresses.temporal_address is not None
        gravity = "the local sandbox" if uses_sandbox(settings) else str(settings.gravity_base_url)
        console.print(
            f"worker: task queue {settings.temporal_task_queue} on {addresses.temporal_address}, "
            f"database {redact_url(addresses.database_url)}, Gravity at {gravity}"
        )
        asyncio.run(
            run_worker(
                addresses.database_url,
                addresses.temporal_address,
                namespace=addresses.temporal_namespace,
                task_queue=settings.temporal_task_queue,
                gateways=gateway_directory(settings),
            )
        )
        console.print("worker stopped")


def main() -> None:
    """`python worker.py`: the `billing worker` command on its own."""
    typer.run(handles_errors(serve))


if __name__ == "__main__":
    main()
