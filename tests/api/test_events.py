"""The events feed (cursor paging) and signed at-least-once deliveries against a tiny local receiver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from foundation.settings import Settings
from gravity.sandbox.server import ThreadedUvicorn
from models.db import session_scope
from models.outbox import OutboxEvent, emit
from operations.events import EVENT_ID_HEADER, SIGNATURE_HEADER, DeliveryLoop, backoff_seconds, deliver_pending, sign, verify
from tests.api.conftest import API_TOKEN
from tests.api.helpers import ok, refused
from tests.conftest import TASK_QUEUE

SECRET = "events-test-secret"  # loopback tests only


def emit_events(engine: Engine, count: int, stream: str = "subscription:sub_a") -> None:
    with session_scope(engine) as session:
        for n in range(count):
            emit(session, type="payment.failed", stream=stream, payload={"n": n, "reason": "insufficient_funds"})


class Receiver:
    """A billing system's webhook endpoint: verifies each signature; answers 500 `fail_first` times."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_left = fail_first
        self.received: list[dict] = []
        self.attempts = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self.lock:
            self.attempts += 1
            if not verify(body, request.headers.get(SIGNATURE_HEADER), SECRET):
                self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if self.fail_left > 0:
                self.fail_left -= 1
                return JSONResponse({"error": "try later"}, status_code=500)
            event = json.loads(body)
            assert request.headers[EVENT_ID_HEADER] == event["event_id"]
            self.received.append(event)
        return JSONResponse({"ok": True})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver(fail_first=1)
    server = ThreadedUvicorn(hook.app).start()
    try:
        yield hook, server.url + "/hook"
    finally:
        server.stop()


async def test_feed_pages_by_cursor(api: httpx.AsyncClient, db: Engine) -> None:
    empty = ok(await api.get("/events"))
    assert empty == {"events": [], "next_cursor": 0, "has_more": False}
    emit_events(db, 3, "subscription:sub_a")
    emit_events(db, 2, "invoice:inv_b")

    seen: list[dict] = []
    cursor = 0
    while True:
        page = ok(await api.get("/events", params={"after": cursor, "limit": 2}))
        seen.extend(page["events"])
        assert page["next_cursor"] == (page["events"][-1]["id"] if page["events"] else cursor)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen) and len(seen) == 5
    assert [(e["stream"], e["seq"]) for e in seen] == [
        ("subscription:sub_a", 1),
        ("subscription:sub_a", 2),
        ("subscription:sub_a", 3),
        ("invoice:inv_b", 1),
        ("invoice:inv_b", 2),
    ]
    first = seen[0]
    assert set(first) == {"id", "event_id", "type", "stream", "seq", "payload", "created_at"}
    assert first["type"] == "payment.failed" and first["payload"] == {"n": 0, "reason": "insufficient_funds"}
    # A consumer that saw up to the third event resyncs from there.
    resync = ok(await api.get("/events", params={"after": seen[2]["id"]}))
    assert [e["id"] for e in resync["events"]] == [e["id"] for e in seen[3:]]
    tail = ok(await api.get("/events", params={"after": cursor}))
    assert tail == {"events": [], "next_cursor": cursor, "has_more": False}
    only_b = ok(await api.get("/events", params={"stream": "invoice:inv_b"}))
    assert [e["seq"] for e in only_b["events"]] == [1, 2]

    refused(await api.get("/events", params={"limit": 0}), 422, "limit")
    refused(await api.get("/events", params={"limit": 1001}), 422, "limit")
    refused(await api.get("/events", params={"after": -1}), 422, "after")
    refused(await api.get("/events", params={"after": "abc"}), 422, "after")


def test_signatures() -> None:
    body = b'{"a":1}'
    header = sign(body, SECRET, int(time.time()))
    assert verify(body, header, SECRET)
    assert not verify(body + b" ", header, SECRET)
    assert not verify(body, header, "other-secret")
    assert not verify(body, None, SECRET)
    assert not verify(body, "garbage", SECRET)
    old = sign(body, SECRET, int(time.time()) - 3600)
    assert not verify(body, old, SECRET)
    assert verify(body, old, SECRET, tolerance_s=None)
    assert [backoff_seconds(n, base_s=1, cap_s=10) for n in range(6)] == [0, 1, 2, 4, 8, 10]


async def test_delivery_is_signed_in_order_and_retried_after_a_500(db: Engine, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    emit_events(db, 3)

    first = await asyncio.to_thread(deliver_pending, db, url, SECRET, batch=10, backoff_base_s=0)
    assert (first.delivered, first.failed, first.failed_attempts) == (0, 1, 1)  # the 500 stops the batch: no overtaking
    with Session(db) as session:
        rows = list(session.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))))
    assert [(r.delivery_attempts, r.delivered_at is None) for r in rows] == [(1, True), (0, True), (0, True)]

    second = await asyncio.to_thread(deliver_pending, db, url, SECRET, batch=10, backoff_base_s=0)
    assert (second.delivered, second.failed) == (3, 0)
    assert [e["payload"]["n"] for e in hook.received] == [0, 1, 2]
    assert hook.bad_signatures == 0
    with Session(db) as session:
        rows = list(session.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))))
    assert [(r.delivery_attempts, r.delivered_at is not None) for r in rows] == [(2, True), (1, True), (1, True)]
    nothing = await asyncio.to_thread(deliver_pending, db, url, SECRET, batch=10, backoff_base_s=0)
    assert (nothing.delivered, nothing.failed) == (0, 0)

    # A receiver with another secret refuses every delivery; nothing is marked delivered.
    emit_events(db, 1, "subscription:sub_c")
    wrong = await asyncio.to_thread(deliver_pending, db, url, "wrong-secret", batch=10, backoff_base_s=0)
    assert (wrong.delivered, wrong.failed) == (0, 1) and hook.bad_signatures == 1
    unreachable = await asyncio.to_thread(deliver_pending, db, "http://127.0.0.1:9/hook", SECRET, batch=10, timeout_s=1.0, backoff_base_s=0)
    assert unreachable.failed == 1


async def test_delivery_loop_runs_with_the_api_and_backs_off(
    db: Engine, engine: Engine, temporal_env: WorkflowEnvironment, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    emit_events(db, 2)
    loop = DeliveryLoop(db, url, SECRET, idle_s=0.05, backoff_base_s=0.05).start()
    try:
        for _ in range(200):
            if len(hook.received) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.stop()
    assert [e["payload"]["n"] for e in hook.received] == [0, 1] and hook.attempts == 3

    # Configured with BILLING_EVENTS_URL, the API process itself runs the loop while it serves.
    settings = Settings.model_construct(api_token=SecretStr(API_TOKEN), events_url=url, events_secret=SecretStr(SECRET))
    server = ThreadedUvicorn(create_app(engine, temporal_env.client, settings, task_queue=TASK_QUEUE)).start()
    try:
        emit_events(db, 1, "subscription:sub_d")
        for _ in range(200):
            if len(hook.received) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        server.stop()
    assert hook.received[-1]["stream"] == "subscription:sub_d"


class PickyReceiver(Receiver):
    """Refuses, for ever, every event whose payload says `poison`; slow enough to race."""

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        if json.loads(body)["payload"].get("poison"):
            with self.lock:
                self.attempts += 1
            return JSONResponse({"error": "cannot process"}, status_code=422)
        await asyncio.sleep(0.01)
        return await super().hook(request)


async def test_an_event_the_receiver_keeps_refusing_holds_back_only_its_stream_until_parked(db: Engine) -> None:
    """Issue 16 item 7: one refused event blocked every stream for ever."""
    hook = PickyReceiver()
    server = ThreadedUvicorn(hook.app).start()
    try:
        with session_scope(db) as session:
            emit(session, type="payment.failed", stream="subscription:sub_bad", payload={"n": 0, "poison": True})
            emit(session, type="payment.failed", stream="subscription:sub_bad", payload={"n": 1})
        emit_events(db, 2, "subscription:sub_good")
        url = server.url + "/hook"
        first = await asyncio.to_thread(deliver_pending, db, url, SECRET, batch=10, backoff_base_s=0, max_attempts=3)
        assert (first.delivered, first.failed) == (2, 1)
        assert [(e["stream"], e["payload"]["n"]) for e in hook.received] == [("subscription:sub_good", 0), ("subscription:sub_good", 1)]
        for _ in range(2):  # refused twice more: parked, and its stream moves on in order
            await asyncio.to_thread(deliver_pending, db, url, SECRET, batch=10, backoff_base_s=0, max_attempts=3)
        assert hook.received[-1]["stream"] == "subscription:sub_bad" and hook.received[-1]["payload"]["n"] == 1
        with Session(db) as session:
            poisoned = session.exec(select(OutboxEvent).where(OutboxEvent.stream == "subscription:sub_bad").order_by(col(OutboxEvent.id))).first()
        assert poisoned is not None and poisoned.parked_at is not None and poisoned.delivered_at is None and poisoned.delivery_attempts == 3
    finally:
        server.stop()


async def test_two_replicas_delivering_at_once_keep_each_stream_in_order(db: Engine) -> None:
    """Issue 16 item 7: with SKIP LOCKED a second API replica took a stream's later events while the
    first was still sending its earlier ones."""
    hook = PickyReceiver()
    server = ThreadedUvicorn(hook.app).start()
    streams = [f"subscription:sub_{n}" for n in range(3)]
    for stream in streams:
        emit_events(db, 8, stream)
    url = server.url + "/hook"

    def replica() -> None:
        for _ in range(50):
            deliver_pending(db, url, SECRET, batch=3)
            with hook.lock:
                if len(hook.received) >= 24:
                    return

    try:
        await asyncio.gather(asyncio.to_thread(replica), asyncio.to_thread(replica))
    finally:
        server.stop()
    for stream in streams:
        seqs = [e["seq"] for e in hook.received if e["stream"] == stream]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) == 8, (stream, seqs)
