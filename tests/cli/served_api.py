"""The HTTP API for a CLI test module that compares the CLI's answers with the API's.

Module-scoped on purpose: the API tests' server is package-scoped and switches time skipping off
while it lives, and imported into `tests/cli` it would live until the last CLI test, so every later
test that waits on simulated time would hang.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from tests.api import conftest as api_fixtures


@pytest.fixture(scope="module")
def api_app(engine: Engine, temporal_env: WorkflowEnvironment, sandbox_server: SandboxServer) -> FastAPI:
    return api_fixtures.app_for(engine, temporal_env, sandbox_server)


@pytest.fixture(scope="module")
def api_server(api_app: FastAPI, temporal_env: WorkflowEnvironment, billing_worker: Worker) -> Iterator[ThreadedUvicorn]:
    with api_fixtures.serving(api_app, temporal_env) as server:
        yield server


api = api_fixtures.api
