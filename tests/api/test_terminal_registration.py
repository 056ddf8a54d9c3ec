"""The API refuses a terminal payment on a device its location never registered, naming the device."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import Engine

from models.billing import Payment
from tests.api.helpers import build_clinic, count, ok, refused

DEVICE = "counter-1"  # known to the sandbox


async def test_api_terminal_payment_refuses_an_unregistered_device(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api, terminals=())
    lines = [{"description": "Exam", "amount_cents": 8_500}]
    invoice = ok(await api.post("/invoices", json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": lines}), 201)
    body = {"location_id": clinic.location_id, "device_name": DEVICE, "invoice_id": invoice["id"]}
    answer = refused(await api.post("/terminal-payments", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}), 422, "device_name")
    assert DEVICE in answer["message"] and "never registered" in answer["message"]
    assert count(db, Payment) == 0
