"""The operator CLI against the session's real PostgreSQL, Temporal dev server (worker on
"billing-tests") and Gravity sandbox, configured the way an operator configures it: environment
variables (`DATABASE_URL`, `TEMPORAL_ADDRESS`, `BILLING_TEMPORAL_TASK_QUEUE`, the sandbox's address).

Commands run in-process through typer's CliRunner, in a thread: each command runs its own event
loop (`asyncio.run`) while the test's loop keeps the worker going. Workflows the CLI starts use its
own Temporal client, so they run in real time (no time skipping).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from cli.main import app
from foundation.settings import get_settings
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.conftest import TASK_QUEUE


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.exit_code == 0, (self.exit_code, self.stdout, self.stderr)
        return json.loads(self.stdout)


Billing = Callable[..., Awaitable[Run]]


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def cli_environment(
    database_url: str,
    temporal_env: WorkflowEnvironment,
    sandbox_server: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    sandbox_url = urlsplit(sandbox_server.root_url)
    return {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address(temporal_env),
        "BILLING_TEMPORAL_TASK_QUEUE": TASK_QUEUE,
        "BILLING_SANDBOX_HOST": sandbox_url.hostname or "127.0.0.1",
        "BILLING_SANDBOX_PORT": str(sandbox_url.port),
        "BILLING_GRAVITY_BASE_URL": "",
        "BILLING_DATA_DIR": str(tmp_path_factory.mktemp("cli-data")),
        "COLUMNS": "200",
    }


def invoke(environment: dict[str, str], *args: str) -> Run:
    """One `billing ...` command, in-process; the settings are read afresh from `environment`."""
    get_settings.cache_clear()
    try:
        result: Result = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def billing(db: Engine, billing_worker: Worker, sandbox: SandboxControl, cli_environment: dict[str, str]) -> Iterator[Billing]:
    """`await billing("show", sub_id, "--json")`, over empty tables and a reset sandbox."""

    async def run(*args: str) -> Run:
        return await asyncio.to_thread(invoke, cli_environment, *args)

    yield run


def refused(run: Run, *words: str) -> str:
    """A refusal: exit 1, one red line on stderr naming what is wrong, no traceback."""
    assert run.exit_code == 1, (run.exit_code, run.stdout, run.stderr)
    message = run.stderr.strip()
    assert message and "Traceback" not in message, run.stderr
    for word in words:
        assert word in message, (word, message)
    return message


def bad_input(run: Run, *words: str) -> str:
    """Input a command cannot take: exit 2, one red line on stderr naming what is wrong, no traceback."""
    assert run.exit_code == 2, (run.exit_code, run.stdout, run.stderr)
    message = run.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, run.stderr
    for word in words:
        assert word in message, (word, message)
    return message


async def eventually(probe: Callable[[], Any], *, timeout: float = 30.0) -> Any:
    """Poll a database probe (in a thread) until it returns something truthy; workflows run in real time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(probe)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
