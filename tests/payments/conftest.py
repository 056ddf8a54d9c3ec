"""Fixtures of the counter-payment scenarios: a postback receiver, Gravity clients for the
operations, and a clinic with a counter invoice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.conventions import POSTBACK_SIGNATURE_HEADER
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations.payments import PostbackRejected, receive_postback
from tests.support.clinic import Clinic, make_clinic

POSTBACK_SECRET = "payments-test-postback-secret"  # a test value


@dataclass
class Receiver:
    """What the postback endpoint talks to, and what it answered (for assertions)."""

    client: Client | None = None
    engine: Engine | None = None
    url: str = ""
    answers: list[tuple[int, str]] = field(default_factory=list)


@pytest.fixture(scope="session")
async def postback_receiver(temporal_env: WorkflowEnvironment) -> AsyncIterator[Receiver]:
    """A tiny HTTP endpoint, on the test's event loop, that hands postbacks to `receive_postback`
    (the API will do the same)."""
    receiver = Receiver(client=temporal_env.client)

    async def postback(request: Request) -> JSONResponse:
        body = await request.body()
        assert receiver.client is not None and receiver.engine is not None
        try:
            receipt = await receive_postback(
                receiver.client, receiver.engine, body=body, signature=request.headers.get(POSTBACK_SIGNATURE_HEADER), secret=POSTBACK_SECRET
            )
        except PostbackRejected as error:
            receiver.answers.append((error.status, str(error)))
            return JSONResponse({"message": str(error)}, status_code=error.status)
        receiver.answers.append((200, receipt.status))
        return JSONResponse({"status": receipt.status})

    app = Starlette(routes=[Route("/gravity/postback", postback, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/gravity/postback"
    yield receiver
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)


@pytest.fixture
def postbacks(postback_receiver: Receiver, db: Engine, sandbox: SandboxControl) -> Iterator[Receiver]:
    """The sandbox posts every terminal result to the receiver, signed with the shared secret."""
    postback_receiver.engine = db
    postback_receiver.answers.clear()
    sandbox.configure_postbacks(url=postback_receiver.url, secret=POSTBACK_SECRET, hold=False, backoff_base_s=0.2, max_attempts=3)
    yield postback_receiver


@pytest.fixture(scope="session")
async def gateways(sandbox_server: SandboxServer) -> AsyncIterator[GatewayDirectory]:
    directory = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    yield directory
    await directory.aclose()


@pytest.fixture
def clinic(db: Engine) -> Clinic:
    return make_clinic(db, price_cents=4_500)


@pytest.fixture
def ready(billing_worker: Worker, postbacks: Receiver) -> Receiver:
    """Worker running and postbacks wired: what every workflow scenario needs."""
    return postbacks
