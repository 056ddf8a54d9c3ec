"""Enrollment through the API bills the first cycle; reads, commands and redemptions; every refusal."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
from sqlalchemy import Engine

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.idempotency import ApiIdempotency
from models.subscriptions import ServiceRedemption, Subscription
from tests.api.helpers import ApiClinic, build_clinic, count, eventually, ok, refused, tokenize
from tests.subscriptions.helpers import assert_books_match_gateway

COMMANDS = ("cancel", "pause", "resume", "card", "plan", "pay-now", "redemptions")


def key() -> dict[str, str]:
    """A fresh Idempotency-Key: enrollment, cancel, plan change and pay-now can move money and require one."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def enrollment(clinic: ApiClinic, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "client_id": clinic.client_id,
        "pet_id": clinic.pet_id,
        "plan_id": clinic.plan_id,
        "location_id": clinic.location_id,
        "start_date": (date.today() - timedelta(days=2)).isoformat(),
    }
    body.update(overrides)
    return body


async def paid_invoice(api: httpx.AsyncClient, client_id: str) -> dict | None:
    invoices = ok(await api.get(f"/clients/{client_id}/invoices"))
    return invoices[0] if invoices and invoices[0]["status"] == "paid" else None


async def test_enrolled_subscription_bills_its_first_cycle_and_takes_commands(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    clinic = await build_clinic(api, price_cents=4_500)
    card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    other_card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server, "5555555555554444")), 201)

    created = await api.post("/subscriptions", json=enrollment(clinic), headers=key())
    body = ok(created, 201)
    sub_id = body["subscription_id"]
    assert body["created"] is True and body["workflow_id"] == f"subscription:{sub_id}"
    assert body["subscription"]["card_id"] == card["id"]
    again = ok(await api.post("/subscriptions", json=enrollment(clinic), headers=key()), 200)  # another key, the same enrollment
    assert again["subscription_id"] == sub_id and again["created"] is False

    # The start date is in the past: the first cycle is billed at once, to the saved card.
    summary = await eventually(lambda: paid_invoice(api, clinic.client_id))
    assert (summary["subscription_id"], summary["total_cents"], summary["paid_cents"]) == (sub_id, 4_500, 4_500)
    invoice = ok(await api.get(f"/invoices/{summary['id']}"))
    assert invoice["balance_cents"] == 0
    assert [(line["kind"], line["amount_cents"]) for line in invoice["lines"]] == [("plan_fee", 4_500)]
    assert [(p["status"], p["method"], p["approved_cents"], p["masked_number"][-4:]) for p in invoice["payments"]] == [
        ("approved", "card_on_file", 4_500, "1111")
    ]
    assert ok(await api.get(f"/clients/{clinic.client_id}/invoices", params={"status": "open"})) == []
    refused(await api.get(f"/clients/{clinic.client_id}/invoices", params={"status": "weird"}), 422, "status")
    refused(await api.get("/invoices/nope"), 404, "invoice_id")
    refused(await api.get("/clients/nope/invoices"), 404, "client_id")

    view = ok(await api.get(f"/subscriptions/{sub_id}"))
    assert view["subscription"]["status"] == "active"
    assert view["workflow"]["status"] == "active" and view["workflow"]["next_cycle"] == 1
    assert view["workflow"]["history"][0]["outcome"] == "paid"

    # Services redeemed under the plan, at their retail value, at most the included quantity per term.
    redemption = ok(await api.post(f"/subscriptions/{sub_id}/redemptions", json={"service_code": "EXAM"}), 201)
    assert (redemption["service_code"], redemption["retail_cents"]) == ("EXAM", 6_500)
    ok(await api.post(f"/subscriptions/{sub_id}/redemptions", json={"service_code": "EXAM"}), 201)
    refused(await api.post(f"/subscriptions/{sub_id}/redemptions", json={"service_code": "EXAM"}), 409, "service_code")
    refused(await api.post(f"/subscriptions/{sub_id}/redemptions", json={"service_code": "GROOM"}), 422, "service_code")
    refused(await api.post(f"/subscriptions/{sub_id}/redemptions", json={}), 422, "service_code")
    assert count(db, ServiceRedemption) == 2

    # Commands, and their refusals (state conflicts are 409, bad values 422).
    refused(await api.post(f"/subscriptions/{sub_id}/resume"), 409, "status")
    assert ok(await api.post(f"/subscriptions/{sub_id}/pause"))["status"] == "paused"
    refused(await api.post(f"/subscriptions/{sub_id}/pause"), 409, "status")
    assert ok(await api.post(f"/subscriptions/{sub_id}/resume"))["status"] == "active"
    refused(await api.post(f"/subscriptions/{sub_id}/pay-now", headers=key()), 409, "status")
    refused(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": "nope"}), 422, "card_id")
    refused(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": card["id"]}), 422, "card_id")
    refused(await api.post(f"/subscriptions/{sub_id}/card", json={}), 422, "card_id")
    assert ok(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": other_card["id"]}))["accepted"] is True
    assert await eventually(lambda: _card_of(api, sub_id, other_card["id"]))

    adult = {"location_id": clinic.location_id, "name": "Adult", "price_cents": 6_000, "proration_policy": "next_cycle"}
    bigger = ok(await api.post("/plans", json=adult), 201)
    refused(await api.post(f"/subscriptions/{sub_id}/plan", json={"plan_id": "nope"}, headers=key()), 422, "plan_id")
    refused(await api.post(f"/subscriptions/{sub_id}/plan", json={"plan_id": clinic.plan_id}, headers=key()), 422, "plan_id")
    assert ok(await api.post(f"/subscriptions/{sub_id}/plan", json={"plan_id": bigger["id"]}, headers=key()))["accepted"] is True
    assert ok(await api.get(f"/subscriptions/{sub_id}"))["workflow"]["plan_id"] == bigger["id"]

    refused(await api.post(f"/subscriptions/{sub_id}/cancel", json={"mode": "later"}, headers=key()), 422, "mode")
    refused(await api.post(f"/subscriptions/{sub_id}/cancel", json={"reason": "x" * 501}, headers=key()), 422, "reason")
    cancelled = ok(await api.post(f"/subscriptions/{sub_id}/cancel", json={"mode": "now", "reason": "moved away"}, headers=key()))
    assert cancelled["status"] == "cancelled"
    for command, payload in (("pause", None), ("cancel", {}), ("pay-now", None)):
        refused(await api.post(f"/subscriptions/{sub_id}/{command}", json=payload, headers=key()), 409, "status")
    refused(await api.post(f"/subscriptions/{sub_id}/redemptions", json={"service_code": "EXAM"}), 409, "status")
    assert ok(await api.get(f"/subscriptions/{sub_id}"))["subscription"]["status"] == "cancelled"

    # Every change above reported in the subscription's stream, gapless.
    feed = ok(await api.get("/events", params={"stream": f"subscription:{sub_id}", "limit": 1000}))
    types = [e["type"] for e in feed["events"]]
    assert [e["seq"] for e in feed["events"]] == list(range(1, len(types) + 1))
    for expected in (
        "invoice.issued",
        "service.redeemed",
        "subscription.paused",
        "subscription.resumed",
        "subscription.card_changed",
        "subscription.cancelled",
    ):
        assert expected in types, types
    assert_books_match_gateway(db, sandbox)


async def _card_of(api: httpx.AsyncClient, sub_id: str, card_id: str) -> bool:
    return ok(await api.get(f"/subscriptions/{sub_id}"))["subscription"]["card_id"] == card_id


async def test_refused_enrollments_write_nothing(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    clinic = await build_clinic(api)
    refused(await api.post("/subscriptions", json=enrollment(clinic), headers=key()), 422, "card_id")  # no saved card yet
    ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    other = await build_clinic(api)
    cases = [
        (enrollment(clinic, plan_id="nope"), 422, "plan_id"),
        (enrollment(clinic, plan_id=other.plan_id), 422, "plan_id"),
        (enrollment(clinic, pet_id=other.pet_id), 422, "pet_id"),
        (enrollment(clinic, client_id="nope"), 422, "client_id"),
        (enrollment(clinic, location_id="nope"), 422, "location_id"),
        (enrollment(clinic, card_id="nope"), 422, "card_id"),
        (enrollment(clinic, start_date="2026-02-30"), 422, "start_date"),
        (enrollment(clinic, start_date="tomorrow"), 422, "start_date"),
        (enrollment(clinic, start_date=(date.today() - timedelta(days=90)).isoformat()), 422, "start_date"),
        (enrollment(clinic, start_date=(date.today() + timedelta(days=400)).isoformat()), 422, "start_date"),
        (enrollment(clinic, subscription_id="has spaces"), 422, "subscription_id"),
        (enrollment(clinic, card_number="4111111111111111"), 422, "card_number"),
        ({"client_id": clinic.client_id}, 422, "pet_id"),
    ]
    for body, status, field in cases:
        refused(await api.post("/subscriptions", json=body, headers={"Idempotency-Key": f"k-{field}-{len(str(body))}"}), status, field)
    ok(await api.patch(f"/locations/{clinic.location_id}/settings", json={"allow_recurring_gravity": False}))
    refused(await api.post("/subscriptions", json=enrollment(clinic), headers=key()), 422, "location_id")
    assert count(db, Subscription) == 0
    assert count(db, ApiIdempotency) == 0

    for command in COMMANDS:
        payload = {"card": {"card_id": "c"}, "plan": {"plan_id": "p"}, "redemptions": {"service_code": "EXAM"}}.get(command, {})
        refused(await api.post(f"/subscriptions/nope/{command}", json=payload, headers=key()), 404, "subscription_id")
    refused(await api.get("/subscriptions/nope"), 404, "subscription_id")


async def test_enrollment_replay_with_an_idempotency_key(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    clinic = await build_clinic(api)
    ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    same = {"Idempotency-Key": "enroll-biscuit-1"}
    first = await api.post("/subscriptions", json=enrollment(clinic), headers=same)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    replay = await api.post("/subscriptions", json=enrollment(clinic), headers=same)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    different = enrollment(clinic, start_date=(date.today() - timedelta(days=1)).isoformat())
    refused(await api.post("/subscriptions", json=different, headers=same), 409, "Idempotency-Key")
    assert count(db, Subscription) == 1
    await eventually(lambda: paid_invoice(api, clinic.client_id))
    ok(await api.post(f"/subscriptions/{first.json()['subscription_id']}/cancel", json={"mode": "now"}, headers=key()))
    assert_books_match_gateway(db, sandbox)
