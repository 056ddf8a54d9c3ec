"""Plans over their life through the API: a change of terms is a version, listed with its dates; a
retired plan refuses enrollment and plan changes with a 409 naming plan_id; bad input is a 4xx naming the field."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gravity.sandbox.server import SandboxServer
from models.outbox import OutboxEvent
from models.plans import PlanVersion
from tests.api.helpers import build_clinic, count, ok, refused, tokenize


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def plan_events(db: Engine, plan_id: str) -> list[str]:
    with Session(db) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.stream == f"plan:{plan_id}").order_by(col(OutboxEvent.seq)))
        return [row.type for row in rows]


async def test_a_change_of_terms_is_a_new_version_listed_with_its_dates(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api, price_cents=4_500)
    first = ok(await api.get(f"/plans/{clinic.plan_id}/versions"))
    assert [(v["version"], v["price_cents"], v["effective_until"]) for v in first["versions"]] == [(1, 4_500, None)]

    changed = ok(await api.patch(f"/plans/{clinic.plan_id}", json={"price_cents": 4_900, "enrollment_fee_cents": 1_000}))
    assert (changed["version"], changed["price_cents"], changed["enrollment_fee_cents"]) == (2, 4_900, 1_000)
    again = ok(await api.patch(f"/plans/{clinic.plan_id}", json={"price_cents": 4_900}))  # the same terms: no new version
    assert again["version"] == 2

    listed = ok(await api.get(f"/plans/{clinic.plan_id}/versions"))
    assert listed["current_version"] == 2 and listed["retired_at"] is None
    one, two = listed["versions"]
    assert (one["version"], one["price_cents"], two["version"], two["price_cents"]) == (1, 4_500, 2, 4_900)
    assert one["effective_until"] == two["effective_from"] and two["effective_until"] is None
    assert one["effective_from"] <= two["effective_from"]
    assert ok(await api.get(f"/plans/{clinic.plan_id}"))["price_cents"] == 4_900
    assert plan_events(db, clinic.plan_id) == ["plan.version_added"]


async def test_bad_changes_are_refused_naming_the_field_and_change_nothing(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    path = f"/plans/{clinic.plan_id}"
    before, versions_before = ok(await api.get(path)), count(db, PlanVersion)
    refused(await api.patch(path, json={}), 422, "body")
    refused(await api.patch(path, json={"interval_months": 12}), 422, "interval_months")
    refused(await api.patch(path, json={"term_months": 0}), 422, "term_months")
    refused(await api.patch(path, json={"price_cents": 0}), 422, "price_cents")
    refused(await api.patch(path, json={"price_cents": "4900"}), 422, "price_cents")
    refused(await api.patch(path, json={"price_cents": 6_000_000}), 422, "price_cents")  # above the location's max_invoice_cents
    refused(await api.patch(path, json={"dunning": {"retry_offsets_days": [5, 3]}}), 422, "dunning")
    refused(await api.patch(path, json={"location_id": "loc_other"}), 422, "location_id")
    refused(await api.patch("/plans/plan_nope", json={"price_cents": 100}), 404, "plan_id")
    refused(await api.get("/plans/plan_nope/versions"), 404, "plan_id")
    refused(await api.post("/plans/plan_nope/retire"), 404, "plan_id")
    assert ok(await api.get(path)) == before and count(db, PlanVersion) == versions_before


async def test_a_retired_plan_refuses_new_subscriptions_and_changes_with_409(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer) -> None:
    clinic = await build_clinic(api)
    other = await build_clinic(api)
    ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    body = {"client_id": clinic.client_id, "pet_id": clinic.pet_id, "location_id": clinic.location_id, "start_date": date.today().isoformat()}
    ok(await api.patch(f"/plans/{clinic.plan_id}", json={"price_cents": 4_700}))
    sub = ok(await api.post("/subscriptions", json={**body, "plan_id": clinic.plan_id}, headers=key()), 201)
    assert sub["subscription"]["plan_version"] == 2  # a new enrollment takes the newest version at once
    listed = ok(await api.get(f"/plans/{clinic.plan_id}/versions"))
    assert [(v["version"], v["subscriptions"]) for v in listed["versions"]] == [(1, 0), (2, 1)]

    retired = ok(await api.post(f"/plans/{clinic.plan_id}/retire"))
    assert retired["live_subscriptions"] == 1 and retired["plan"]["retired_at"] is not None and retired["plan"]["active"] is False
    assert ok(await api.post(f"/plans/{clinic.plan_id}/retire"))["plan"]["retired_at"] == retired["plan"]["retired_at"]
    assert plan_events(db, clinic.plan_id) == ["plan.version_added", "plan.retired"]

    pet = ok(await api.post(f"/clients/{clinic.client_id}/pets", json={"name": "Pepper", "species": "cat"}), 201)
    answer = refused(await api.post("/subscriptions", json={**body, "pet_id": pet["id"], "plan_id": clinic.plan_id}, headers=key()), 409, "plan_id")
    assert "retired" in answer["message"]
    refused(await api.patch(f"/plans/{clinic.plan_id}", json={"price_cents": 100}), 409, "plan_id")
    # A plan change to a retired plan is refused the same way (here: `other`'s plan, retired too).
    ok(await api.post(f"/plans/{other.plan_id}/retire"))
    refused(await api.post(f"/subscriptions/{sub['subscription_id']}/plan", json={"plan_id": other.plan_id}, headers=key()), 409, "plan_id")
    ok(await api.post(f"/subscriptions/{sub['subscription_id']}/cancel", json={"mode": "now"}, headers=key()))
