"""Locations, terminals, clients, pets, saved cards and plans: every route and every refusal, and
nothing written when a request is refused."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.clinic import Client, Location, Pet, SavedCard, Terminal
from models.plans import HealthPlan, PlanService
from tests.api.helpers import build_clinic, count, ok, refused, tokenize


async def test_locations_settings_and_terminals(api: httpx.AsyncClient, db: Engine) -> None:
    created = ok(
        await api.post(
            "/locations",
            json={"id": "loc-denver", "name": "Denver", "timezone": "America/Denver", "gravity_oid": SANDBOX_OID, "charge_time": "08:30"},
        ),
        201,
    )
    assert created == {
        "id": "loc-denver",
        "name": "Denver",
        "timezone": "America/Denver",
        "gravity_oid": SANDBOX_OID,
        "allow_recurring_gravity": True,
        "charge_time": "08:30:00",
        "max_invoice_cents": 5_000_000,
        "max_invoice_lines": 50,
    }
    assert ok(await api.get("/locations/loc-denver")) == created
    refused(await api.post("/locations", json={"id": "loc-denver", "name": "Again", "timezone": "America/Denver", "gravity_oid": "1"}), 409, "id")

    good = {"name": "X", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID}
    refused(await api.post("/locations", json={**good, "timezone": "Mars/Olympus"}), 422, "timezone")
    refused(await api.post("/locations", json={**good, "timezone": "+05:00"}), 422, "timezone")
    refused(await api.post("/locations", json={**good, "gravity_oid": "abc"}), 422, "gravity_oid")
    refused(await api.post("/locations", json={**good, "charge_time": "25:00"}), 422, "charge_time")
    refused(await api.post("/locations", json={**good, "name": ""}), 422, "name")
    refused(await api.post("/locations", json={**good, "secret": 1}), 422, "secret")
    refused(await api.post("/locations", json={"name": "X"}), 422, "timezone")
    refused(await api.post("/locations", content=b"{not json", headers={"Content-Type": "application/json"}), 422, "body")
    assert count(db, Location) == 1
    refused(await api.get("/locations/nope"), 404, "location_id")

    changed = ok(await api.patch("/locations/loc-denver/settings", json={"name": "Denver East", "charge_time": "07:00"}))
    assert (changed["name"], changed["charge_time"], changed["subscriptions_notified"]) == ("Denver East", "07:00:00", 0)
    changed = ok(await api.patch("/locations/loc-denver/settings", json={"allow_recurring_gravity": False}))
    assert changed["allow_recurring_gravity"] is False
    changed = ok(await api.patch("/locations/loc-denver/settings", json={"allow_recurring_gravity": True}))
    assert changed["allow_recurring_gravity"] is True and changed["subscriptions_notified"] == 0
    refused(await api.patch("/locations/loc-denver/settings", json={"allow_recurring_gravity": "sometimes"}), 422, "allow_recurring_gravity")
    refused(await api.patch("/locations/loc-denver/settings", json={"timezone": "UTC"}), 422, "timezone")
    refused(await api.patch("/locations/nope/settings", json={"name": "Y"}), 404, "location_id")

    assert ok(await api.get("/locations/loc-denver/terminals")) == []
    terminal = ok(await api.post("/locations/loc-denver/terminals", json={"device_name": "counter-1", "label": "Front desk"}), 201)
    assert terminal["device_name"] == "counter-1" and terminal["location_id"] == "loc-denver"
    assert ok(await api.get("/locations/loc-denver/terminals")) == [terminal]
    refused(await api.post("/locations/loc-denver/terminals", json={"device_name": "counter-1"}), 409, "device_name")
    refused(await api.post("/locations/loc-denver/terminals", json={"device_name": ""}), 422, "device_name")
    refused(await api.post("/locations/nope/terminals", json={"device_name": "counter-2"}), 404, "location_id")
    refused(await api.get("/locations/nope/terminals"), 404, "location_id")
    assert count(db, Terminal) == 1


async def test_clients_and_pets(api: httpx.AsyncClient, db: Engine) -> None:
    location = ok(await api.post("/locations", json={"name": "L", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID}), 201)
    client = ok(await api.post("/clients", json={"location_id": location["id"], "name": "Dana", "email": "dana@example.com"}), 201)
    assert ok(await api.get(f"/clients/{client['id']}")) == client
    refused(await api.post("/clients", json={"location_id": "nope", "name": "Dana"}), 422, "location_id")
    refused(await api.post("/clients", json={"location_id": location["id"], "name": "Dana", "email": "not-an-email"}), 422, "email")
    refused(await api.post("/clients", json={"location_id": location["id"]}), 422, "name")
    refused(await api.post("/clients", json={"id": client["id"], "location_id": location["id"], "name": "Twin"}), 409, "id")
    refused(await api.get("/clients/nope"), 404, "client_id")
    assert count(db, Client) == 1

    pet = ok(await api.post(f"/clients/{client['id']}/pets", json={"name": "Biscuit", "species": "cat"}), 201)
    assert pet["client_id"] == client["id"] and pet["species"] == "cat"
    assert ok(await api.get(f"/pets/{pet['id']}")) == pet
    assert ok(await api.get(f"/clients/{client['id']}/pets")) == [pet]
    refused(await api.post(f"/clients/{client['id']}/pets", json={"species": "dog"}), 422, "name")
    refused(await api.post("/clients/nope/pets", json={"name": "Rex"}), 404, "client_id")
    refused(await api.get("/clients/nope/pets"), 404, "client_id")
    refused(await api.get("/pets/nope"), 404, "pet_id")
    assert count(db, Pet) == 1


async def test_saved_cards_by_gravity_reference_only(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    clinic = await build_clinic(api)
    first = await tokenize(sandbox_server)
    card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=first), 201)
    assert card["is_default"] is True and card["masked_number"].endswith("1111")
    assert "gravity_ref" not in card and "fingerprint" not in card
    second = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server, "5555555555554444")), 201)
    assert second["is_default"] is False
    third = ok(await api.post(f"/clients/{clinic.client_id}/cards", json={**await tokenize(sandbox_server, "4012888888881881"), "is_default": True}), 201)
    listing = ok(await api.get(f"/clients/{clinic.client_id}/cards"))
    assert listing["visible"] is True
    assert [(c["id"], c["is_default"]) for c in listing["cards"]] == [(card["id"], False), (second["id"], False), (third["id"], True)]

    before = count(db, SavedCard)
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "card_number": "4111111111111111"}), 422, "card_number")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "cvv": "123"}), 422, "cvv")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "gravity_ref": "4111 1111 1111 1111"}), 422, "gravity_ref")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "masked_number": "4111111111111111"}), 422, "masked_number")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "brand": "ZZ"}), 422, "brand")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json={**first, "exp_month": 13}), 422, "exp_month")
    sandbox.set_clock_offset(-7 * 365 * 86_400)  # Gravity saved this card years ago; it has expired since
    expired = await tokenize(sandbox_server, "4012888888881881", "0120")
    sandbox.set_clock_offset(0)
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json=expired), 422, "exp_year")
    refused(await api.post(f"/clients/{clinic.client_id}/cards", json=first), 409, "gravity_ref")
    refused(await api.post("/clients/nope/cards", json=first), 404, "client_id")
    assert count(db, SavedCard) == before

    # "Allow Gravity payment for recurring payment" off: saved cards are not shown.
    ok(await api.patch(f"/locations/{clinic.location_id}/settings", json={"allow_recurring_gravity": False}))
    hidden = ok(await api.get(f"/clients/{clinic.client_id}/cards"))
    assert hidden["visible"] is False and hidden["cards"] == [] and clinic.location_id in hidden["reason"]
    refused(await api.get("/clients/nope/cards"), 404, "client_id")


async def test_plans_with_services_and_validated_dunning(api: httpx.AsyncClient, db: Engine) -> None:
    location = ok(await api.post("/locations", json={"name": "L", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID}), 201)
    body = {
        "location_id": location["id"],
        "name": "Senior Cat",
        "price_cents": 3_999,
        "enrollment_fee_cents": 1_500,
        "interval_months": 1,
        "term_months": 12,
        "dunning": {"retry_offsets_days": [2, 5, 9], "on_exhausted": "cancel"},
        "services": [
            {"code": "EXAM", "name": "Exam", "retail_cents": 6_500, "quantity": 2},
            {"code": "VAX", "name": "Vaccines", "retail_cents": 4_000},
        ],
    }
    plan = ok(await api.post("/plans", json=body), 201)
    assert plan["dunning"] == {"retry_offsets_days": [2, 5, 9], "on_exhausted": "cancel"}
    assert [(s["code"], s["quantity"]) for s in plan["services"]] == [("EXAM", 2), ("VAX", 1)]
    assert ok(await api.get(f"/plans/{plan['id']}")) == plan
    group_wide = ok(await api.post("/plans", json={"name": "Any", "price_cents": 50_000, "interval_months": 12}), 201)
    assert group_wide["location_id"] is None
    assert group_wide["dunning"] == {"retry_offsets_days": [3, 7, 11, 15], "on_exhausted": "suspend"}

    plans_before, services_before = count(db, HealthPlan), count(db, PlanService)
    refused(await api.post("/plans", json={**body, "dunning": {"retry_offsets_days": [5, 3]}}), 422, "dunning")
    refused(await api.post("/plans", json={**body, "dunning": {"retry_offsets_days": [3, 30]}}), 422, "dunning")
    refused(await api.post("/plans", json={**body, "dunning": {"retry_days": [3]}}), 422, "dunning")
    refused(await api.post("/plans", json={**body, "dunning": {"on_exhausted": "shrug"}}), 422, "dunning")
    refused(await api.post("/plans", json={**body, "dunning": [1, 2]}), 422, "dunning")
    refused(await api.post("/plans", json={**body, "interval_months": 6}), 422, "interval_months")
    refused(await api.post("/plans", json={**body, "price_cents": 0}), 422, "price_cents")
    refused(await api.post("/plans", json={**body, "price_cents": 39.99}), 422, "price_cents")
    refused(await api.post("/plans", json={**body, "cancellation_policy": "keep_it"}), 422, "cancellation_policy")
    refused(await api.post("/plans", json={**body, "interval_months": 12, "term_months": 18}), 422, "term_months")
    refused(await api.post("/plans", json={**body, "services": [body["services"][0], body["services"][0]]}), 422, "body")
    refused(await api.post("/plans", json={**body, "services": [{"code": "X", "name": "X", "retail_cents": -1}]}), 422, "services.0.retail_cents")
    refused(await api.post("/plans", json={**body, "location_id": "nope"}), 422, "location_id")
    refused(await api.post("/plans", json={**body, "id": plan["id"]}), 409, "id")
    assert (count(db, HealthPlan), count(db, PlanService)) == (plans_before, services_before)
    refused(await api.get("/plans/nope"), 404, "plan_id")
