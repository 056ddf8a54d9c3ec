"""Money POSTs through the API: a key is required, the same key is the same movement (even after the
request that started it died with its process), a slow movement answers 202 and is polled, and
racing requests answer 409, never 500."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from models.billing import Deposit, Payment, Refund
from tests.api.conftest import API_TOKEN, POSTBACK_SECRET
from tests.api.helpers import build_clinic, count, eventually, ok, refused, tokenize
from tests.conftest import TASK_QUEUE
from tests.subscriptions.helpers import assert_books_match_gateway

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "counter-1"


def key(name: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": name or uuid.uuid4().hex}


async def paid_at_counter(api: httpx.AsyncClient, sandbox: SandboxControl, api_server: ThreadedUvicorn, cents: int = 10_000) -> tuple[str, str]:
    """A counter invoice paid in full at the terminal; returns (client id, payment id)."""
    sandbox.configure_postbacks(url=api_server.url + "/gravity/postbacks", secret=POSTBACK_SECRET, hold=False, backoff_base_s=0.2, max_attempts=3)
    clinic = await build_clinic(api)
    lines = [{"description": "Dental cleaning", "amount_cents": cents}]
    invoice = ok(await api.post("/invoices", json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": lines}), 201)
    body = {"location_id": clinic.location_id, "device_name": DEVICE, "invoice_id": invoice["id"]}
    payment_id = ok(await api.post("/terminal-payments", json=body, headers=key()), 202)["payment_id"]

    async def waiting() -> bool:
        view = ok(await api.get(f"/terminal-payments/{payment_id}"))
        return bool(view["workflow"]) and view["workflow"]["state"] == "waiting_at_counter"

    await eventually(waiting)
    sandbox.present_card(SANDBOX_OID, DEVICE)

    async def approved() -> bool:
        return ok(await api.get(f"/terminal-payments/{payment_id}"))["payment_status"] == "approved"

    await eventually(approved, timeout=30)
    return clinic.client_id, payment_id


def refunds(engine: Engine, payment_id: str) -> list[Refund]:
    with Session(engine) as session:
        return list(session.exec(select(Refund).where(Refund.payment_id == payment_id)))


def refunded(engine: Engine, payment_id: str) -> int:
    with Session(engine) as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        return payment.refunded_cents


def given_back_at_gravity(sandbox: SandboxControl) -> list[dict[str, Any]]:
    return [r for r in sandbox.transactions() if r["transaction_type"] in ("CreditReturn", "Void") and r["status"] == "approved"]


# ------------------------------------------------------------------------------ a key is required
async def test_every_post_that_can_move_money_needs_an_idempotency_key(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, api_server: ThreadedUvicorn
) -> None:
    client_id, payment_id = await paid_at_counter(api, sandbox, api_server)
    card = ok(await api.post(f"/clients/{client_id}/cards", json=await tokenize(sandbox_server)), 201)
    deposit = ok(await api.post("/deposits", json={"client_id": client_id, "card_id": card["id"], "amount_cents": 2_000}, headers=key()), 201)
    with Session(db) as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None and payment.invoice_id is not None
        invoice_id, location_id = payment.invoice_id, payment.location_id
    at_gravity, rows = len(sandbox.transactions()), (count(db, Payment), count(db, Refund), count(db, Deposit))

    money_posts: list[tuple[str, dict[str, Any] | None]] = [
        (f"/payments/{payment_id}/refunds", {"amount_cents": 1_000}),
        ("/deposits", {"client_id": client_id, "card_id": card["id"], "amount_cents": 2_000}),
        (f"/deposits/{deposit['deposit_id']}/refund", None),
        ("/terminal-payments", {"location_id": location_id, "device_name": DEVICE, "invoice_id": invoice_id}),
        (f"/invoices/{invoice_id}/cancel", {"reason": "no key"}),
        ("/subscriptions", {"client_id": client_id, "pet_id": "pet_x", "plan_id": "pln_x", "location_id": location_id, "start_date": "2026-01-01"}),
        ("/subscriptions/sub_x/pay-now", None),
        ("/subscriptions/sub_x/cancel", {"mode": "now"}),
        ("/subscriptions/sub_x/plan", {"plan_id": "pln_x"}),
    ]
    for path, body in money_posts:
        answer = await api.post(path, json=body)
        assert answer.status_code == 400, (path, answer.status_code, answer.text)
        error = answer.json()
        assert error["error"] == "validation" and "Idempotency-Key" in error["message"], (path, error)
        assert [f["field"] for f in error["fields"]] == ["Idempotency-Key"], (path, error)
    assert len(sandbox.transactions()) == at_gravity
    assert (count(db, Payment), count(db, Refund), count(db, Deposit)) == rows


# ------------------------------------------------------------------------------ racing requests
async def test_ten_identical_refund_requests_at_once_give_back_once_and_never_answer_500(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, api_server: ThreadedUvicorn
) -> None:
    _, payment_id = await paid_at_counter(api, sandbox, api_server)
    same = key("refund-ten-at-once")
    answers = await asyncio.gather(*(api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 2_500}, headers=same) for _ in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 409} and 200 in statuses, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["fields"][0]["field"] == "Idempotency-Key", answer.text
    first = next(a.json() for a in answers if a.status_code == 200)
    assert (first["kind"], first["amount_cents"], first["status"]) == ("refund", 2_500, "done")
    again = ok(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 2_500}, headers=same))
    assert again["refund_id"] == first["refund_id"]
    assert [(r.amount_cents, r.status) for r in refunds(db, payment_id)] == [(2_500, "done")]
    assert refunded(db, payment_id) == 2_500
    assert len(given_back_at_gravity(sandbox)) == 1

    # Ten identical requests the rules refuse: 409 or the refusal, never a 500, nothing moves.
    too_much = key("refund-too-much")
    answers = await asyncio.gather(*(api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 9_000}, headers=too_much) for _ in range(10)))
    assert {a.status_code for a in answers} <= {409}, [(a.status_code, a.text) for a in answers]
    assert refunded(db, payment_id) == 2_500 and len(given_back_at_gravity(sandbox)) == 1
    assert_books_match_gateway(db, sandbox)


async def test_two_refunds_racing_for_the_same_remainder_one_gives_back_the_other_is_409(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, api_server: ThreadedUvicorn
) -> None:
    _, payment_id = await paid_at_counter(api, sandbox, api_server)
    answers = await asyncio.gather(*(api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 6_000}, headers=key()) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409], [(a.status_code, a.text) for a in answers]
    loser = next(a.json() for a in answers if a.status_code == 409)
    assert loser["error"] == "conflict" and loser["fields"][0]["field"] == "amount_cents" and "4000 cents" in loser["message"], loser
    assert [(r.amount_cents, r.status) for r in refunds(db, payment_id) if r.status != "failed"] == [(6_000, "done")]
    assert refunded(db, payment_id) == 6_000
    assert len(given_back_at_gravity(sandbox)) == 1
    # Asked again with what is left, the rest goes back.
    rest = ok(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 4_000}, headers=key()))
    assert rest["amount_cents"] == 4_000 and refunded(db, payment_id) == 10_000
    assert_books_match_gateway(db, sandbox)


# ------------------------------------------------------------------------------ slow and interrupted movements
async def test_a_slow_refund_answers_202_and_is_polled_to_its_end(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, api_server: ThreadedUvicorn
) -> None:
    _, payment_id = await paid_at_counter(api, sandbox, api_server)
    sandbox.inject_fault("tokenizedRefund", "slow", count=1, delay_s=4.5)  # longer than the API waits (3 s in these tests)
    same = key("slow-refund")
    started = await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 1_500}, headers=same)
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "running" and started.headers["location"] == body["status_url"]
    assert [r.status for r in refunds(db, payment_id)] == ["pending"]

    async def finished() -> dict[str, Any] | None:
        view = ok(await api.get(body["status_url"]))
        return view if view["status"] != "running" else None

    view = await eventually(finished)
    assert (view["status"], view["kind"], view["amount_cents"]) == ("done", "refund", 1_500) and view["refund_id"]
    assert [(r.amount_cents, r.status) for r in refunds(db, payment_id)] == [(1_500, "done")]
    refused(await api.get("/refunds/rfq_nope"), 404, "refund_request_id")
    assert_books_match_gateway(db, sandbox)


def start_api(address: str, database_url: str, base_url: str) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.api.api_process", address, database_url, base_url, TASK_QUEUE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    ready, port = process.stdout.readline().split()[-2:]
    assert ready == b"ready", ready
    return process, f"http://127.0.0.1:{int(port)}"


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


async def test_the_same_key_after_a_crashed_request_resumes_its_refund_and_gives_back_once(
    api: httpx.AsyncClient,
    db: Engine,
    database_url: str,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    api_server: ThreadedUvicorn,
    temporal_env: WorkflowEnvironment,
) -> None:
    _, payment_id = await paid_at_counter(api, sandbox, api_server)
    sandbox.inject_fault("tokenizedRefund", "slow", count=1, delay_s=3)
    same, body = key("refund-through-a-crash"), {"amount_cents": 3_000, "reason": "the API died mid-refund"}
    process, url = start_api(temporal_env.client.service_client.config.target_host, database_url, sandbox_server.base_url)
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30.0) as doomed:
            request = asyncio.create_task(doomed.post(f"/payments/{payment_id}/refunds", json=body, headers=same))

            async def in_flight() -> bool:
                return any(r.status == "pending" for r in refunds(db, payment_id))

            await eventually(in_flight)  # written, reserved and sent to Gravity...
            kill(process)  # ...when the process serving the request dies
            with pytest.raises(httpx.TransportError):
                await request
    finally:
        kill(process)

    # The dead request's claim on the key is never completed; by the time a client retries, its lease ran out.
    with db.begin() as connection:
        connection.execute(text("UPDATE api_idempotency SET created_at = created_at - interval '1 hour' WHERE status_code IS NULL"))
    again = await api.post(f"/payments/{payment_id}/refunds", json=body, headers=same)
    assert again.status_code in (200, 202), (again.status_code, again.text)  # 202: Gravity has not answered the first send yet
    answer = again.json()
    if again.status_code == 202:

        async def finished() -> dict[str, Any] | None:
            view = ok(await api.get(answer["status_url"]))
            return view if view["status"] != "running" else None

        answer = await eventually(finished)
    assert (answer["kind"], answer["amount_cents"], answer["status"]) == ("refund", 3_000, "done")
    assert [(r.amount_cents, r.status) for r in refunds(db, payment_id)] == [(3_000, "done")]
    assert refunded(db, payment_id) == 3_000
    assert len(given_back_at_gravity(sandbox)) == 1
    replay = await api.post(f"/payments/{payment_id}/refunds", json=body, headers=same)
    assert replay.status_code == again.status_code and replay.headers["idempotent-replayed"] == "true" and replay.json() == again.json()
    assert_books_match_gateway(db, sandbox)
