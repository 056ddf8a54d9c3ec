"""Saved cards over their life through the API: no card number in any field, a reference checked at
the sandbox before it is saved, listing, the default, removal and the cards expiring too soon."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.clinic import Client, SavedCard
from tests.api.helpers import build_clinic, count, eventually, ok, refused, tokenize

CARD_NUMBER = "4111111111111111"


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def looks_like_a_card(response: httpx.Response, field: str) -> None:
    body = refused(response, 422, field)
    assert "looks like a card number" in body["message"]
    assert CARD_NUMBER not in response.text and "4111 1111" not in response.text


async def test_no_field_takes_a_card_number(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: object) -> None:
    clinic = await build_clinic(api)
    card = await tokenize(sandbox_server)
    before = count(db, SavedCard)
    looks_like_a_card(await api.post(f"/clients/{clinic.client_id}/cards", json={**card, "gravity_ref": f"{CARD_NUMBER}/123"}), "gravity_ref")
    looks_like_a_card(await api.post(f"/clients/{clinic.client_id}/cards", json={**card, "gravity_ref": f"pan:{CARD_NUMBER}"}), "gravity_ref")
    looks_like_a_card(await api.post(f"/clients/{clinic.client_id}/cards", json={**card, "fingerprint": CARD_NUMBER}), "fingerprint")
    looks_like_a_card(await api.post(f"/clients/{clinic.client_id}/cards", json={**card, "fingerprint": "fp 4111 1111 1111 1111"}), "fingerprint")
    assert count(db, SavedCard) == before

    clients = count(db, Client)
    looks_like_a_card(await api.post("/clients", json={"location_id": clinic.location_id, "name": f"Dana {CARD_NUMBER}"}), "name")
    looks_like_a_card(await api.post("/clients", json={"location_id": clinic.location_id, "name": "Dana", "id": CARD_NUMBER}), "id")
    looks_like_a_card(
        await api.post("/clients", json={"location_id": clinic.location_id, "name": "Dana"}, headers={"Idempotency-Key": CARD_NUMBER}), "Idempotency-Key"
    )
    assert count(db, Client) == clients


async def test_a_reference_gravity_never_issued_is_refused(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: object) -> None:
    clinic = await build_clinic(api)
    card = await tokenize(sandbox_server, "5555555555554444", "1129")
    other = await tokenize(sandbox_server)
    before = count(db, SavedCard)
    url = f"/clients/{clinic.client_id}/cards"
    body = refused(await api.post(url, json={**card, "gravity_ref": uuid.uuid4().hex}), 422, "gravity_ref")
    assert "never issued" in body["message"]
    refused(await api.post(url, json={**card, "external_transaction_id": str(uuid.uuid4())}), 422, "gravity_ref")
    refused(await api.post(url, json={**card, "gravity_ref": other["gravity_ref"]}), 422, "gravity_ref")  # another transaction's
    refused(await api.post(url, json={**card, "masked_number": "************1111"}), 422, "masked_number")
    refused(await api.post(url, json={**card, "brand": "VS"}), 422, "brand")
    refused(await api.post(url, json={**card, "exp_year": 2031}), 422, "exp_year")
    refused(await api.post(url, json={key: value for key, value in card.items() if key != "external_transaction_id"}), 422, "external_transaction_id")
    assert count(db, SavedCard) == before

    # Only the reference and its lookup key: the masked number, brand and expiry are Gravity's.
    saved = ok(await api.post(url, json={"gravity_ref": card["gravity_ref"], "external_transaction_id": card["external_transaction_id"]}), 201)
    assert (saved["masked_number"][-4:], saved["brand"], saved["exp_month"], saved["exp_year"]) == ("4444", "MC", 11, 2029)
    refused(await api.post(url, json=card), 409, "gravity_ref")


async def test_gravity_unreachable_saves_nothing(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    clinic = await build_clinic(api)
    card = await tokenize(sandbox_server)
    sandbox.inject_fault("lookup", "500", count=10)
    before = count(db, SavedCard)
    body = refused(await api.post(f"/clients/{clinic.client_id}/cards", json=card), 503, "gravity_ref")
    assert body["error"] == "unavailable" and card["gravity_ref"] not in body["message"]
    assert count(db, SavedCard) == before
    sandbox.clear_faults()
    ok(await api.post(f"/clients/{clinic.client_id}/cards", json=card), 201)  # the retry, once Gravity answers


async def test_cards_over_their_life(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: object) -> None:
    clinic = await build_clinic(api)
    today = date.today()
    expiring = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server, "4012888888881881", today.strftime("%m%y"))), 201)
    lasting = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server, "5555555555554444")), 201)
    assert expiring["is_default"] and not lasting["is_default"]

    # Set the default, and refusals that change nothing.
    assert ok(await api.post(f"/clients/{clinic.client_id}/cards/{lasting['id']}/default"))["is_default"] is True
    listing = ok(await api.get(f"/clients/{clinic.client_id}/cards"))
    assert [(c["id"], c["is_default"]) for c in listing["cards"]] == [(expiring["id"], False), (lasting["id"], True)]
    refused(await api.post(f"/clients/{clinic.client_id}/cards/nope/default"), 404, "card_id")
    refused(await api.delete(f"/clients/{clinic.client_id}/cards/nope"), 404, "card_id")
    refused(await api.delete(f"/clients/nope/cards/{lasting['id']}"), 404, "client_id")

    # A subscription charging the card that expires this month: its next charge is next month.
    start = (today - timedelta(days=2)).isoformat()
    enrollment = {"client_id": clinic.client_id, "pet_id": clinic.pet_id, "plan_id": clinic.plan_id, "location_id": clinic.location_id, "start_date": start}
    sub_id = ok(await api.post("/subscriptions", json={**enrollment, "card_id": expiring["id"]}, headers=key()), 201)["subscription_id"]

    async def expiring_now() -> list[dict[str, Any]]:  # once the workflow has written the next charge's date
        return ok(await api.get("/cards/expiring", params={"location_id": clinic.location_id}))["cards"]

    found = await eventually(expiring_now)
    assert [(item["card"]["id"], item["subscription_id"]) for item in found] == [(expiring["id"], sub_id)]
    assert date.fromisoformat(found[0]["next_due_date"]) > today
    assert ok(await api.get("/cards/expiring", params={"location_id": clinic.location_id, "before": today.isoformat()}))["cards"] == []
    assert ok(await api.get("/cards/expiring", params={"location_id": "elsewhere"}))["cards"] == []
    refused(await api.get("/cards/expiring", params={"before": "soon"}), 422, "before")

    # Removing the card a live subscription charges is refused until another card takes its place.
    body = refused(await api.delete(f"/clients/{clinic.client_id}/cards/{expiring['id']}"), 409, "card_id")
    assert sub_id in body["message"]
    listing = ok(await api.get(f"/clients/{clinic.client_id}/cards"))
    assert [c["disabled"] for c in listing["cards"]] == [False, False]
    ok(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": lasting["id"]}, headers=key()))
    removed = ok(await api.delete(f"/clients/{clinic.client_id}/cards/{expiring['id']}"))
    assert removed["disabled"] is True and removed["is_default"] is False
    assert ok(await api.delete(f"/clients/{clinic.client_id}/cards/{expiring['id']}"))["disabled"] is True  # twice: the same
    assert ok(await api.get("/cards/expiring", params={"location_id": clinic.location_id}))["cards"] == []

    # A removed card cannot become the default or be charged again.
    refused(await api.post(f"/clients/{clinic.client_id}/cards/{expiring['id']}/default"), 422, "card_id")
    refused(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": expiring["id"]}, headers=key()), 422, "card_id")

    # The location's gate still hides the cards.
    ok(await api.patch(f"/locations/{clinic.location_id}/settings", json={"allow_recurring_gravity": False}))
    hidden = ok(await api.get(f"/clients/{clinic.client_id}/cards"))
    assert hidden["visible"] is False and hidden["cards"] == []
