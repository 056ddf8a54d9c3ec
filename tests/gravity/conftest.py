"""Real servers for the Gravity contract tests: the sandbox over HTTP and a tiny postback receiver.

Nothing is mocked: the client talks to the sandbox through uvicorn on loopback, and the sandbox posts
signed postbacks to a second uvicorn app that verifies them the way the engine's API must.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gravity.client import GravityClient
from gravity.postback import POSTBACK_SIGNATURE_HEADER, parse_postback, verify
from gravity.results import TransactionResult
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn

OID = "2000000001"
TOKEN = "contract-test-token-1f9c2a7e"  # loopback sandbox only
OTHER_OID = "2000000002"
OTHER_TOKEN = "contract-test-token-other-77d0"
POSTBACK_SECRET = "contract-postback-secret"
DEVICES = ["front-1", "front-2", "exam-room"]
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"


def new_id() -> str:
    return str(uuid.uuid4())


class PostbackReceiver:
    """What the engine's postback endpoint must do: verify over the raw body, 401 a bad signature
    and store nothing, dedupe by externalTransactionId. Can be told to fail the next N deliveries."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self.clear()
        self._server = ThreadedUvicorn(Starlette(routes=[Route("/postbacks", self._receive, methods=["POST"])]))

    def clear(self) -> None:
        with self._lock:
            self.arrivals: list[str] = []  # every accepted delivery, in arrival order (duplicates too)
            self.results: dict[str, TransactionResult] = {}  # deduplicated
            self.rejected = 0
            self.fail_next = 0

    async def _receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"message": "receiver down"}, status_code=503)
            if not verify(raw, request.headers.get(POSTBACK_SIGNATURE_HEADER), self.secret):
                self.rejected += 1
                return JSONResponse({"message": "bad signature"}, status_code=401)
            result = parse_postback(raw)
            self.arrivals.append(result.external_transaction_id)
            self.results.setdefault(result.external_transaction_id, result)
        return JSONResponse({"ok": True})

    @property
    def url(self) -> str:
        return self._server.url + "/postbacks"

    def __enter__(self) -> PostbackReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll (without blocking the loop) until predicate() is truthy."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def receiver() -> Iterator[PostbackReceiver]:
    with PostbackReceiver(POSTBACK_SECRET) as server:
        yield server


@pytest.fixture(scope="session")
def gravity_sandbox(receiver: PostbackReceiver) -> Iterator[SandboxServer]:
    with SandboxServer(
        {OID: TOKEN, OTHER_OID: OTHER_TOKEN},
        postback_url=receiver.url,
        postback_secret=POSTBACK_SECRET,
        devices={OID: DEVICES},
        postback_backoff_s=0.05,
        log_level="critical",
    ) as server:
        yield server


@pytest.fixture
def control(gravity_sandbox: SandboxServer, receiver: PostbackReceiver) -> Iterator[SandboxControl]:
    """The control surface over an emptied sandbox and receiver."""
    with SandboxControl(gravity_sandbox.base_url) as ctl:
        ctl.reset()
        ctl.configure_postbacks(url=receiver.url, secret=POSTBACK_SECRET, backoff_base_s=0.05, max_attempts=8)
        for device in DEVICES:
            ctl.set_device(OID, device, online=True)
        receiver.clear()
        yield ctl


@pytest.fixture
async def client(gravity_sandbox: SandboxServer, control: SandboxControl) -> AsyncIterator[GravityClient]:
    async with GravityClient(gravity_sandbox.base_url, OID, TOKEN, timeout=3.0, safe_lookup_attempts=6, safe_lookup_backoff_s=0.05) as gravity:
        yield gravity


async def save_card(client: GravityClient, number: str = VISA, exp_mmyy: str = "1230") -> str:
    """Tokenize a test card and return its token (the approved uniqueTransId)."""
    saved = await client.tokenize(card_number=number, exp_mmyy=exp_mmyy, external_id=new_id(), security_code="123")
    assert saved.card_ref, saved
    return saved.card_ref


def trans_id(result: TransactionResult) -> str:
    """The gateway's id of a transaction the test made: refunds and voids name their sale by it."""
    assert result.unique_trans_id is not None, result
    return result.unique_trans_id


async def looked_up(client: GravityClient, external_id: str) -> TransactionResult:
    """The lookup of a transaction the test knows has ended, so it must be found."""
    result = await client.lookup(external_id)
    assert result is not None, external_id
    return result
