"""Numbers at the edge: every cents, amount and count field takes a JSON integer only, amounts and
line counts stop at the location's own limits, query numbers stay inside PostgreSQL's bigint, and
path ids have one shape; each refusal is a 422 naming the field, and nothing is written."""

from __future__ import annotations

import uuid
from copy import deepcopy
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from models.billing import Deposit, Invoice, Payment, Refund
from models.clinic import Location
from models.plans import HealthPlan
from tests.api.helpers import ApiClinic, build_clinic, count, ok, refused, tokenize
from tests.api.test_money_movements import paid_at_counter

NOT_INTEGERS = ["5000", True, 5000.0, 50.5, None, [5000], {"cents": 5000}]


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted `path` (`lines.0.amount_cents`) set to `value`."""
    copy = deepcopy(body)
    target: Any = copy
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value
    return copy


async def integer_fields(api: httpx.AsyncClient, clinic: ApiClinic, card_id: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, url, a valid body, the integer field) for every integer a request body carries."""
    plan = {
        "location_id": clinic.location_id,
        "name": "P",
        "price_cents": 4_500,
        "interval_months": 1,
        "term_months": 12,
        "enrollment_fee_cents": 0,
        "services": [{"code": "EXAM", "name": "Exam", "retail_cents": 6_500, "quantity": 2}],
    }
    card = {
        "gravity_ref": uuid.uuid4().hex,
        "external_transaction_id": str(uuid.uuid4()),
        "masked_number": "************1111",
        "brand": "VS",
        "exp_month": 12,
        "exp_year": 2030,
    }
    invoice = {"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": [{"description": "Exam", "amount_cents": 6_500}]}
    location = {"name": "L", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID, "max_invoice_cents": 100_000, "max_invoice_lines": 10}
    return [
        ("POST", "/plans", plan, "price_cents"),
        ("POST", "/plans", plan, "enrollment_fee_cents"),
        ("POST", "/plans", plan, "interval_months"),
        ("POST", "/plans", plan, "term_months"),
        ("POST", "/plans", plan, "services.0.retail_cents"),
        ("POST", "/plans", plan, "services.0.quantity"),
        ("POST", f"/clients/{clinic.client_id}/cards", card, "exp_month"),
        ("POST", f"/clients/{clinic.client_id}/cards", card, "exp_year"),
        ("POST", "/invoices", invoice, "lines.0.amount_cents"),
        ("POST", "/locations", location, "max_invoice_cents"),
        ("POST", "/locations", location, "max_invoice_lines"),
        ("PATCH", f"/locations/{clinic.location_id}/settings", {"max_invoice_cents": 100_000}, "max_invoice_cents"),
        ("PATCH", f"/locations/{clinic.location_id}/settings", {"max_invoice_lines": 10}, "max_invoice_lines"),
        ("POST", "/deposits", {"client_id": clinic.client_id, "card_id": card_id, "amount_cents": 2_000}, "amount_cents"),
        (
            "POST",
            "/terminal-payments",
            {"location_id": clinic.location_id, "device_name": "counter-1", "invoice_id": "inv_x", "amount_cents": 100},
            "amount_cents",
        ),
        ("POST", "/payments/pay_x/refunds", {"amount_cents": 100}, "amount_cents"),
    ]


async def test_every_cents_and_count_field_takes_only_a_json_integer(api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer) -> None:
    clinic = await build_clinic(api)
    card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    before = {model: count(db, model) for model in (HealthPlan, Invoice, Location, Payment, Deposit)}
    for method, url, body, field in await integer_fields(api, clinic, card["id"]):
        for bad in NOT_INTEGERS:
            if bad is None and (method == "PATCH" or url.startswith(("/terminal-payments", "/payments/")) or url.endswith("/cards")):
                continue  # null means "unchanged" in a settings patch, "the balance" or "all of it" in a payment, "Gravity's" in a card
            response = await api.request(method, url, json=with_value(body, field, bad), headers=key())
            refused(response, 422, field)
    assert {model: count(db, model) for model in before} == before
    # The price that started it: "5000" and true were stored as 5000 and 1 cent.
    refused(await api.post("/plans", json={"name": "P", "price_cents": "5000"}), 422, "price_cents")
    refused(await api.post("/plans", json={"name": "P", "price_cents": True}), 422, "price_cents")


async def test_yes_no_fields_take_only_a_json_boolean(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    for bad in ("true", 1, 0, "no", "off", 1.0):
        refused(await api.patch(f"/locations/{clinic.location_id}/settings", json={"allow_recurring_gravity": bad}), 422, "allow_recurring_gravity")
        refused(await api.post("/plans", json={"name": "P", "price_cents": 100, "auto_renew": bad}), 422, "auto_renew")
    assert ok(await api.get(f"/locations/{clinic.location_id}"))["allow_recurring_gravity"] is True


async def test_a_counter_invoice_above_the_locations_limits_is_refused(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    body = {"client_id": clinic.client_id, "location_id": clinic.location_id}
    # The $1,100,000 invoice of issue 18: eleven lines of $100,000 each.
    eleven = [{"description": f"Line {n}", "amount_cents": 10_000_000} for n in range(11)]
    answer = refused(await api.post("/invoices", json={**body, "lines": eleven}), 422, "lines.0.amount_cents")
    assert "max_invoice_cents" in answer["message"]
    # Under the line ceiling, over the total: the field is the lines.
    answer = refused(await api.post("/invoices", json={**body, "lines": [{"description": "Surgery", "amount_cents": 3_000_000}] * 2}), 422, "lines")
    assert "total 6000000" in answer["message"] and "max_invoice_cents (5000000)" in answer["message"]
    assert count(db, Invoice) == 0

    settings = ok(await api.patch(f"/locations/{clinic.location_id}/settings", json={"max_invoice_cents": 50_000, "max_invoice_lines": 3}))
    assert (settings["max_invoice_cents"], settings["max_invoice_lines"]) == (50_000, 3)
    refused(await api.post("/invoices", json={**body, "lines": [{"description": "Exam", "amount_cents": 60_000}]}), 422, "lines.0.amount_cents")
    refused(await api.post("/invoices", json={**body, "lines": [{"description": "Exam", "amount_cents": 30_000}] * 2}), 422, "lines")
    answer = refused(await api.post("/invoices", json={**body, "lines": [{"description": "Exam", "amount_cents": 100}] * 4}), 422, "lines")
    assert "max_invoice_lines (3)" in answer["message"]
    assert count(db, Invoice) == 0
    invoice = ok(await api.post("/invoices", json={**body, "lines": [{"description": "Exam", "amount_cents": 25_000}] * 2}), 201)
    assert invoice["total_cents"] == 50_000

    # The settings themselves have ceilings; and a new location can start with its own.
    refused(await api.patch(f"/locations/{clinic.location_id}/settings", json={"max_invoice_cents": 0}), 422, "max_invoice_cents")
    refused(await api.patch(f"/locations/{clinic.location_id}/settings", json={"max_invoice_cents": 10_000_001}), 422, "max_invoice_cents")
    refused(await api.patch(f"/locations/{clinic.location_id}/settings", json={"max_invoice_lines": 101}), 422, "max_invoice_lines")
    small = ok(await api.post("/locations", json={"name": "Small", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID, "max_invoice_cents": 9_999}), 201)
    assert (small["max_invoice_cents"], small["max_invoice_lines"]) == (9_999, 50)


async def test_a_plan_priced_above_its_locations_limit_is_refused(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    ok(await api.patch(f"/locations/{clinic.location_id}/settings", json={"max_invoice_cents": 20_000}))
    plan = {"location_id": clinic.location_id, "name": "Gold", "price_cents": 20_001}
    refused(await api.post("/plans", json=plan), 422, "price_cents")
    refused(await api.post("/plans", json={**plan, "price_cents": 100, "enrollment_fee_cents": 20_001}), 422, "enrollment_fee_cents")
    refused(
        await api.post("/plans", json={**plan, "price_cents": 100, "services": [{"code": "SURG", "name": "Surgery", "retail_cents": 20_001}]}),
        422,
        "services.0.retail_cents",
    )
    assert count(db, HealthPlan) == 1  # build_clinic's own


async def test_money_movements_above_the_locations_limit_are_refused(
    api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, api_server: ThreadedUvicorn
) -> None:
    client_id, payment_id = await paid_at_counter(api, sandbox, api_server, cents=4_500)
    with_client = ok(await api.get(f"/clients/{client_id}"))
    location_id = with_client["location_id"]
    ok(await api.patch(f"/locations/{location_id}/settings", json={"max_invoice_cents": 1_000}))
    refunds_before = count(db, Refund)
    answer = refused(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 2_000}, headers=key()), 422, "amount_cents")
    assert "max_invoice_cents (1000)" in answer["message"]
    assert count(db, Refund) == refunds_before

    card = ok(await api.post(f"/clients/{client_id}/cards", json=await tokenize(sandbox_server)), 201)
    payments_before = count(db, Payment)
    refused(await api.post("/deposits", json={"client_id": client_id, "card_id": card["id"], "amount_cents": 1_001}, headers=key()), 422, "amount_cents")
    invoice = ok(
        await api.post("/invoices", json={"client_id": client_id, "location_id": location_id, "lines": [{"description": "Exam", "amount_cents": 900}]}), 201
    )
    body = {"location_id": location_id, "device_name": "counter-1", "invoice_id": invoice["id"], "amount_cents": 1_001}
    refused(await api.post("/terminal-payments", json=body, headers=key()), 422, "amount_cents")
    assert count(db, Payment) == payments_before


@pytest.mark.parametrize("after", ["9223372036854775808", "1e30", "-1", "1.5", "99999999999999999999999999", "0x10", "", "NaN"])
async def test_events_cursor_outside_bigint_or_not_an_integer_is_a_422(api: httpx.AsyncClient, after: str) -> None:
    refused(await api.get("/events", params={"after": after}), 422, "after")


async def test_events_limit_and_largest_cursor(api: httpx.AsyncClient) -> None:
    for limit in ("0", "1e3", "1001", "-5", "ten"):
        refused(await api.get("/events", params={"limit": limit}), 422, "limit")
    page = ok(await api.get("/events", params={"after": str(2**63 - 1)}))
    assert page["events"] == [] and page["has_more"] is False


PATH_ROUTES = [
    ("GET", "/locations/{}", "location_id"),
    ("GET", "/locations/{}/terminals", "location_id"),
    ("GET", "/clients/{}", "client_id"),
    ("GET", "/clients/{}/pets", "client_id"),
    ("GET", "/clients/{}/cards", "client_id"),
    ("GET", "/clients/{}/invoices", "client_id"),
    ("GET", "/pets/{}", "pet_id"),
    ("GET", "/plans/{}", "plan_id"),
    ("GET", "/subscriptions/{}", "subscription_id"),
    ("GET", "/invoices/{}", "invoice_id"),
    ("GET", "/terminal-payments/{}", "payment_id"),
    ("GET", "/card-deposits/{}", "payment_id"),
    ("GET", "/refunds/{}", "refund_request_id"),
    ("POST", "/subscriptions/{}/pause", "subscription_id"),
    ("POST", "/payments/{}/refunds", "payment_id"),
    ("POST", "/deposits/{}/refund", "deposit_id"),
]


@pytest.mark.parametrize("bad_id", ["x" * 65, "has space", "semi;colon", "dot.dot", "ünïcode", "a%00b", "tab%09", "a'or'1"])
async def test_path_ids_have_one_shape(api: httpx.AsyncClient, bad_id: str) -> None:
    for method, template, field in PATH_ROUTES:
        response = await api.request(method, template.format(bad_id), json={} if method == "POST" else None, headers=key() if method == "POST" else None)
        refused(response, 422, field)


async def test_a_terminal_payment_where_no_gravity_credential_is_configured_is_refused(api: httpx.AsyncClient, db: Engine) -> None:
    location = ok(await api.post("/locations", json={"name": "Elsewhere", "timezone": "America/Chicago", "gravity_oid": "42"}), 201)
    ok(await api.post(f"/locations/{location['id']}/terminals", json={"device_name": "counter-1"}), 201)
    client = ok(await api.post("/clients", json={"location_id": location["id"], "name": "Pat"}), 201)
    body = {"client_id": client["id"], "location_id": location["id"], "device_name": "counter-1", "amount_cents": 1_000}
    answer = refused(await api.post("/deposits", json=body, headers=key()), 422, "location_id")
    assert "42" in answer["message"]
    assert count(db, Payment) == 0
