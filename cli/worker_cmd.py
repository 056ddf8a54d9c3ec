"""`billing worker`: run a Temporal worker for the engine (scale out by starting more)."""

from __future__ import annotations

import asyncio

from rich.console import Console

from cli.errors import handles_errors
from stack.embedded import EmbeddedStack, load_settings, redact_url
from stack.gravity_config import gateway_directory, uses_sandbox

console = Console(stderr=True, soft_wrap=True, highlight=False)


@handles_errors
def worker() -> None:
    """Run a worker against the configured Temporal and PostgreSQL (or start the embedded ones).

    Stops cleanly on Ctrl-C or SIGTERM: in-flight activities finish or are retried elsewhere.
    """
    settings = load_settings()
    from worker import run_worker

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


def worker_command() -> None:
    """Entry point for `python worker.py`."""
    import typer

    typer.run(worker)
