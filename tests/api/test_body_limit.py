"""The body-size limit: a body above BILLING_API_MAX_BODY_BYTES is answered 413 with a JSON body
naming the limit, while it is still being sent: a 50 MB body is never read whole. Over a raw socket,
so the test controls exactly how much of the body the server has been given when it answers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import Engine

from foundation.settings import Settings
from gravity.sandbox.server import ThreadedUvicorn
from models.idempotency import ApiIdempotency
from tests.api.conftest import API_TOKEN
from tests.api.helpers import count, refused

LIMIT = Settings.model_construct().api_max_body_bytes
FIFTY_MB = 50 * 1024 * 1024
CHUNK = b"x" * 65_536


async def _connect(server: ThreadedUvicorn) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: api", f"Authorization: Bearer {API_TOKEN}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=10)
    return int(status_line.split()[1]), headers, json.loads(body)


def assert_too_large(status: int, body: dict[str, Any]) -> None:
    assert status == 413, body
    assert body["error"] == "payload_too_large" and str(LIMIT) in body["message"]
    assert body["fields"] == [{"field": "body", "reason": f"larger than the limit of {LIMIT} bytes"}]


async def test_a_declared_50_mb_body_is_refused_before_it_is_sent(api_server: ThreadedUvicorn, db: Engine) -> None:
    reader, writer = await _connect(api_server)
    try:
        writer.write(_head("/clients", {"Content-Length": str(FIFTY_MB)}) + CHUNK)
        await writer.drain()
        status, headers, body = await _read_answer(reader)  # answered with 50 MB minus 64 KB still unsent
        assert_too_large(status, body)
        assert headers["connection"] == "close"
    finally:
        writer.close()


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(api_server: ThreadedUvicorn, db: Engine) -> None:
    for path, headers in (("/clients", {}), ("/plans", {"Idempotency-Key": uuid.uuid4().hex}), ("/gravity/postbacks", {"hmac-signature": "x"})):
        reader, writer = await _connect(api_server)
        sent = 0
        try:
            writer.write(_head(path, {"Transfer-Encoding": "chunked", **headers}))
            answer = None
            while sent < FIFTY_MB and answer is None:
                writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                sent += len(CHUNK)
                try:
                    await writer.drain()
                except ConnectionError:
                    break  # the server closed after answering: read what it said
                try:
                    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=0.01)
                except TimeoutError:
                    continue
            assert sent <= LIMIT + 8 * len(CHUNK), (path, sent)  # stopped near the limit, not at 50 MB
            if answer is None:
                answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            status_line, *header_lines = answer.decode("latin-1").split("\r\n")
            length = next(int(v) for k, _, v in (line.partition(":") for line in header_lines) if k.lower() == "content-length")
            assert_too_large(int(status_line.split()[1]), json.loads(await reader.readexactly(length)))
        finally:
            writer.close()
    assert count(db, ApiIdempotency) == 0  # the refused keyed POST left no claim behind


async def test_a_body_under_the_limit_is_read_and_judged_as_usual(api: httpx.AsyncClient, db: Engine) -> None:
    name = "n" * (LIMIT - 1_000)
    refused(await api.post("/clients", json={"location_id": "loc", "name": name}), 422, "name")
    padded = b"{" + b" " * (LIMIT - 40) + b'"location_id": "x"}'  # within the limit, however it arrives
    refused(await api.post("/clients", content=padded, headers={"Content-Type": "application/json"}), 422, "name")
