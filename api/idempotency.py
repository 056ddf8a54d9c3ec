"""Idempotency keys for every POST: the billing system may resend a request after a timeout without
enrolling twice or taking a payment twice.

A POST carrying `Idempotency-Key` is handled like this (table `api_idempotency`):
- first time: the key is claimed (a row with no response yet), the route runs, and a 2xx answer is
  stored with the key; any other answer deletes the claim, so a refused request leaves no row and
  may be retried with the same key once the caller fixed it;
- same key, same request (method, path and canonical JSON body): the stored answer is returned as it
  was, with `Idempotent-Replayed: true`;
- same key, different request: 409; same key while the first is still running: 409 as well;
- same key, same request, and the first claim was never answered for longer than the lease (its
  request died with its process): the retry takes the claim over and runs the route again. Routes
  that move money name their workflow after the key, so running again joins the same movement.

It is ASGI middleware (not a dependency) because it must see and keep the route's whole answer.
Unauthenticated requests pass straight through to the routes, which answer 401 and store nothing; so
do requests whose path holds characters `api.text` refuses, which no route takes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import Engine, delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import IDEMPOTENCY_HEADER, bearer_of, key_problem
from api.errors import error_body
from api.text import first_unsafe
from foundation.scopes import Caller
from models.columns import utcnow
from models.idempotency import ApiIdempotency

REPLAY_HEADER = "Idempotent-Replayed"


def stored_key(token_name: str, key: str) -> str:
    """The row key of a caller's Idempotency-Key (token names hold no ':')."""
    return f"{token_name}:{key}"


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    """Hash of what makes two requests "the same": JSON bodies compare by content, not by spacing."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body.strip() else b""
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim(engine: Engine, key: str, route: str, hashed: str, *, lease_s: float) -> ApiIdempotency | None:
    """None when this request now owns `key`; otherwise the existing row.

    An unanswered claim older than `lease_s` (by the database's clock) is taken over by the same
    request: the request that made it died without answering. A claim released between our insert
    and our read is simply tried again."""
    with Session(engine) as session:
        for _ in range(3):
            inserted = session.exec(  # type: ignore[call-overload]
                insert(ApiIdempotency)
                .values(key=key, route=route, request_hash=hashed)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(ApiIdempotency.key)
            ).first()
            session.commit()
            if inserted is not None:
                return None
            taken_over = session.exec(  # type: ignore[call-overload]
                update(ApiIdempotency)
                .where(
                    ApiIdempotency.key == key,  # type: ignore[arg-type]
                    ApiIdempotency.request_hash == hashed,  # type: ignore[arg-type]
                    ApiIdempotency.status_code.is_(None),  # type: ignore[union-attr]
                    ApiIdempotency.created_at < func.now() - timedelta(seconds=lease_s),  # type: ignore[operator]
                )
                .values(created_at=func.now())
                .returning(ApiIdempotency.key)
            ).first()
            session.commit()
            if taken_over is not None:
                return None
            row = session.exec(select(ApiIdempotency).where(ApiIdempotency.key == key)).first()
            if row is not None:
                return row
    # Claimed and released three times over while we looked: answer "still being processed".
    return ApiIdempotency(key=key, route=route, request_hash=hashed)


def complete(engine: Engine, key: str, status: int, body: Any) -> None:
    with Session(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(ApiIdempotency)
            .where(ApiIdempotency.key == key)  # type: ignore[arg-type]
            .values(status_code=status, response_body=body, completed_at=utcnow())
        )
        session.commit()


def release(engine: Engine, key: str) -> None:
    with Session(engine) as session:
        session.exec(delete(ApiIdempotency).where(ApiIdempotency.key == key))  # type: ignore[call-overload, arg-type]
        session.commit()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, engine: Engine, authenticate: Callable[[str], Caller | None], lease_s: float = 60.0) -> None:
        self.app = app
        self.engine = engine
        self.authenticate = authenticate
        self.lease_s = lease_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_key = headers.get(IDEMPOTENCY_HEADER.lower())
        presented = bearer_of(headers.get("authorization"))
        caller = None
        if given_key is not None and presented is not None:
            caller = await anyio.to_thread.run_sync(self.authenticate, presented)
        if given_key is None or caller is None or first_unsafe(scope["path"]):
            # A path that cannot be stored matches no route's ids: the routes refuse it, keyless.
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller  # the routes' `current_caller` need not look it up again
        reason = key_problem(given_key)
        if reason is not None:
            await _send_json(send, 422, error_body("validation", f"{IDEMPOTENCY_HEADER}: {reason}", [(IDEMPOTENCY_HEADER, reason)]))
            return
        # Keys are each credential's own: another token's answer is never replayed to this one.
        key = stored_key(caller.token, given_key)

        body, more = await _read_body(receive)
        route = f"POST {scope['path']}"
        hashed = request_hash("POST", scope["path"], scope.get("query_string", b""), body)
        existing = await anyio.to_thread.run_sync(lambda: claim(self.engine, key, route, hashed, lease_s=self.lease_s))
        if existing is not None:
            await self._answer_repeat(send, existing, hashed)
            return

        captured: dict[str, Any] = {"start": None, "chunks": []}

        async def replay_receive() -> Message:
            nonlocal body
            if body is not None:
                message = {"type": "http.request", "body": body, "more_body": False}
                body = None  # type: ignore[assignment]
                return message
            return await more()

        async def capture_send(message: Message) -> None:
            # Held back until the key is stored or released, so a replay sent right after this
            # answer always finds the stored one.
            if message["type"] == "http.response.start":
                captured["start"] = message
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(release, self.engine, key)
            raise
        start = captured["start"]
        raw = b"".join(captured["chunks"])
        status = start["status"] if start else 500
        if 200 <= status < 300:
            try:
                stored = json.loads(raw) if raw.strip() else None
            except ValueError:  # every route answers JSON; keep the claim rather than lose the key
                stored = None
            await anyio.to_thread.run_sync(complete, self.engine, key, status, stored)
        else:
            await anyio.to_thread.run_sync(release, self.engine, key)
        if start is not None:
            await send(start)
        await send({"type": "http.response.body", "body": raw})

    async def _answer_repeat(self, send: Send, row: ApiIdempotency, hashed: str) -> None:
        if row.request_hash != hashed:
            reason = f"was first used for another request ({row.route} with another body); use a new key"
            await _send_json(send, 409, error_body("conflict", f"{IDEMPOTENCY_HEADER}: {reason}", [(IDEMPOTENCY_HEADER, reason)]))
        elif row.status_code is None:
            reason = "the first request with this key is still being processed; retry shortly with the same key"
            await _send_json(send, 409, error_body("conflict", f"{IDEMPOTENCY_HEADER}: {reason}", [(IDEMPOTENCY_HEADER, reason)]))
        else:
            await _send_json(send, row.status_code, row.response_body, replayed=True)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), receive


async def _send_json(send: Send, status: int, body: Any, *, replayed: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if replayed:
        headers.append((REPLAY_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
