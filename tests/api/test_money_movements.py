"""Money POSTs through the API: a key is required."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from models.billing import Deposit, Payment, Refund
from tests.api.conftest import POSTBACK_SECRET
from tests.api.helpers import build_clinic, count, eventually, ok, tokenize

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
