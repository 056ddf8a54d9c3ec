"""The HTTP API under uvicorn on a free loopback port, called with httpx, over the session's real
PostgreSQL, Temporal dev server (worker on "billing-tests") and Gravity sandbox.

Workflows enrolled through the API run in real time here (time skipping is switched off for them):
a start date in the past bills the first cycle at once, and the next cycle is a month away, so the
commands the tests send meet a subscription that holds still.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.directory import GatewayDirectory
from gravity.sandbox.listing import SandboxListing
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from tests.conftest import TASK_QUEUE

API_TOKEN = "api-test-token-5d1e9b7c3a"  # loopback tests only
POSTBACK_SECRET = "api-test-postback-secret"  # loopback tests only


def test_settings() -> Settings:
    return Settings.model_construct(
        api_token=SecretStr(API_TOKEN),
        postback_secret=SecretStr(POSTBACK_SECRET),
        events_url=None,
        events_secret=None,
        money_wait_s=3.0,  # a money POST answers 202 after this; tests make Gravity slower than it to see one
    )


def app_for(engine: Engine, temporal_env: WorkflowEnvironment, sandbox_server: SandboxServer) -> FastAPI:
    """The app the API tests serve, over the session's database, Temporal and sandbox (its
    transaction list too, as `billing api` on the local sandbox has it)."""
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0, listing=SandboxListing(sandbox_server.base_url))
    return create_app(engine, temporal_env.client, test_settings(), task_queue=TASK_QUEUE, gateways=gateways)


@contextmanager
def serving(app: FastAPI, temporal_env: WorkflowEnvironment) -> Iterator[ThreadedUvicorn]:
    """The app under uvicorn, with time skipping off for the workflows started meanwhile. Hold it
    no longer than the tests that need it: while it is held, no workflow of the session skips time."""
    with temporal_env.with_time_skipping_disabled():
        server = ThreadedUvicorn(app).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="package")
def api_app(engine: Engine, temporal_env: WorkflowEnvironment, sandbox_server: SandboxServer) -> FastAPI:
    """The app the API server serves (its `routes` are what a test walks)."""
    return app_for(engine, temporal_env, sandbox_server)


@pytest.fixture(scope="package")
def api_server(api_app: FastAPI, temporal_env: WorkflowEnvironment, billing_worker: Worker) -> Iterator[ThreadedUvicorn]:
    with serving(api_app, temporal_env) as server:
        yield server


@pytest.fixture
async def api(db: Engine, api_server: ThreadedUvicorn) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client over empty tables."""
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30.0) as client:
        yield client


@pytest.fixture
async def anonymous(db: Engine, api_server: ThreadedUvicorn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30.0) as client:
        yield client
