"""Session-wide real servers for the tests: PostgreSQL (a fresh migrated database per run), and,
in the suites that need them, the Gravity sandbox and the Temporal dev server with time skipping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import get_engine
from tests.support.database import fresh_database, truncate_all
from tests.support.temporal import start_time_skipping_env
from worker import build_worker

TASK_QUEUE = "billing-tests"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The engine, over empty tables."""
    truncate_all(engine)
    yield engine


# ---------------------------------------------------------------- the Gravity sandbox over HTTP
@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}, devices={SANDBOX_OID: ["counter-1", "counter-2"]}) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxControl]:
    """The sandbox's control surface, over a sandbox emptied for this test."""
    with SandboxControl(sandbox_server.root_url) as control:
        control.reset()
        yield control


# ---------------------------------------------------------------- Temporal with time skipping
@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_env()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def billing_worker(temporal_env: WorkflowEnvironment, engine: Engine, sandbox_server: SandboxServer) -> AsyncIterator[Worker]:
    """One worker for the whole run, on the real dev server, database and sandbox."""
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    worker = build_worker(temporal_env.client, engine, gateways, task_queue=TASK_QUEUE)
    async with worker:
        yield worker
    await gateways.aclose()
