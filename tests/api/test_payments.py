"""Front-desk money through the API: counter invoice, terminal payment finished by a real signed
postback from the sandbox, refund, card deposit and its refund (each a workflow, polled at its
status URL), invoice cancellation."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import Engine

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from models.billing import Invoice, Payment
from tests.api.conftest import POSTBACK_SECRET
from tests.api.helpers import build_clinic, count, eventually, ok, refused, tokenize
from tests.subscriptions.helpers import assert_books_match_gateway

DEVICE = "counter-1"


def key() -> dict[str, str]:
    """A fresh Idempotency-Key: every POST here that can move money requires one."""
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_counter_money_end_to_end(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, api_server: ThreadedUvicorn
) -> None:
    sandbox.configure_postbacks(url=api_server.url + "/gravity/postbacks", secret=POSTBACK_SECRET, hold=False, backoff_base_s=0.2, max_attempts=3)
    clinic = await build_clinic(api)
    card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)

    lines = [{"description": "Dental cleaning", "amount_cents": 8_000}, {"description": "Toothpaste", "amount_cents": 2_000, "kind": "product"}]
    invoice = ok(await api.post("/invoices", json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": lines}), 201)
    assert (invoice["kind"], invoice["total_cents"], invoice["status"]) == ("counter", 10_000, "open")
    before = count(db, Invoice)
    refused(await api.post("/invoices", json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": []}), 422, "lines")
    zero_line = {"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": [{"description": "x", "amount_cents": 0}]}
    refused(await api.post("/invoices", json=zero_line), 422, "lines.0.amount_cents")
    refused(await api.post("/invoices", json={"client_id": "nope", "location_id": clinic.location_id, "lines": lines}), 422, "client_id")
    assert count(db, Invoice) == before

    # At the terminal: the sandbox's signed postback reaches /gravity/postbacks and finishes the workflow.
    no_device = {"location_id": clinic.location_id, "device_name": "no-such", "invoice_id": invoice["id"]}
    refused(await api.post("/terminal-payments", json=no_device, headers=key()), 422, "device_name")
    refused(await api.post("/terminal-payments", json={"location_id": clinic.location_id, "device_name": DEVICE}, headers=key()), 422, "invoice_id")
    assert count(db, Payment) == 0
    started = ok(
        await api.post(
            "/terminal-payments",
            json={"location_id": clinic.location_id, "device_name": DEVICE, "invoice_id": invoice["id"]},
            headers={"Idempotency-Key": "counter-sale-1"},
        ),
        202,
    )
    payment_id = started["payment_id"]

    async def waiting() -> bool:
        view = ok(await api.get(f"/terminal-payments/{payment_id}"))
        return bool(view["workflow"]) and view["workflow"]["state"] == "waiting_at_counter"

    await eventually(waiting)
    sandbox.present_card(SANDBOX_OID, DEVICE)

    async def approved() -> bool:
        return ok(await api.get(f"/terminal-payments/{payment_id}"))["payment_status"] == "approved"

    await eventually(approved, timeout=30)
    assert ok(await api.get(f"/invoices/{invoice['id']}"))["status"] == "paid"
    refused(await api.get("/terminal-payments/nope"), 404, "payment_id")
    refused(await api.post(f"/terminal-payments/{payment_id}/cancel"), 409, "status")

    # Refunds: part of the payment, never more than what is left (what other refunds left: a 409).
    refund = ok(
        await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 2_500, "reason": "toothpaste returned"}, headers={"Idempotency-Key": "r-1"}),
    )
    assert refund["amount_cents"] == 2_500 and refund["kind"] in ("void", "refund") and refund["status"] == "done"
    assert ok(await api.get(refund["status_url"])) == refund
    refused(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 9_000}, headers=key()), 409, "amount_cents")
    refused(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": -5}, headers=key()), 422, "amount_cents")
    refused(await api.post("/payments/nope/refunds", json={}, headers=key()), 404, "payment_id")

    # A deposit from the saved card becomes client credit; what is left of it can be given back.
    deposit_body = {"client_id": clinic.client_id, "card_id": card["id"], "amount_cents": 5_000}
    deposit = ok(await api.post("/deposits", json=deposit_body, headers={"Idempotency-Key": "d-1"}), 201)
    assert (deposit["status"], deposit["approved_cents"]) == ("approved", 5_000) and deposit["deposit_id"]
    assert ok(await api.get(deposit["status_url"])) == deposit
    refused(await api.get("/card-deposits/pay_nope"), 404, "payment_id")
    card_and_location = {"client_id": clinic.client_id, "card_id": card["id"], "location_id": clinic.location_id, "amount_cents": 5_000}
    refused(await api.post("/deposits", json=card_and_location, headers=key()), 422, "card_id")
    refused(await api.post("/deposits", json={"client_id": clinic.client_id, "amount_cents": 5_000}, headers=key()), 422, "card_id")
    refused(await api.post("/deposits", json={"client_id": clinic.client_id, "card_id": card["id"], "amount_cents": 0}, headers=key()), 422, "amount_cents")
    given = ok(await api.post(f"/deposits/{deposit['deposit_id']}/refund", headers={"Idempotency-Key": "d-1-refund"}))
    assert (given["status"], given["amount_cents"]) == ("done", 5_000)
    refused(await api.post(f"/deposits/{deposit['deposit_id']}/refund", headers=key()), 422, "deposit_id")  # nothing unused is left
    refused(await api.post("/deposits/nope/refund", headers=key()), 404, "deposit_id")

    # Cancelling an invoice gives back its payments and voids it.
    second = ok(await api.post("/invoices", json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": lines[:1]}), 201)
    ok(await api.post(f"/invoices/{second['id']}/cancel", json={"reason": "entered twice"}, headers=key()), 202)

    async def voided() -> bool:
        return ok(await api.get(f"/invoices/{second['id']}"))["status"] == "void"

    await eventually(voided)
    refused(await api.post(f"/invoices/{second['id']}/cancel", json={}, headers=key()), 409, "invoice_id")
    refused(await api.post("/invoices/nope/cancel", json={}, headers=key()), 404, "invoice_id")

    # Postbacks are verified before anything is read: no bearer, but a wrong signature is a 401.
    forged = await anonymous.post("/gravity/postbacks", content=b'{"transactionResponse": {}}', headers={"hmac-signature": "forged"})
    assert forged.status_code == 401 and forged.json()["error"] == "unauthorized"
    assert_books_match_gateway(db, sandbox)
