"""Scoped API tokens on the real stack: a token reaches only its locations (everything else answers
as an unknown id, and writes nothing), its scope bounds its routes (403 naming it), the event feed is
filtered, a revoked token is refused, only a hash is stored, and the actor is recorded."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine, text

from foundation.settings import SANDBOX_OID
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from operations.audit import audit_trail
from operations.tokens import create_token, revoke_token
from tests.api.helpers import ApiClinic, build_clinic, eventually, ok, refused, tokenize
from tests.api.test_subscriptions import enrollment, paid_invoice

STAFF = {"X-Billing-Staff": "Pat Jones (front desk)"}
#: Routes no bearer token reaches: the health check, and Gravity's postbacks (HMAC).
UNPROTECTED = {("GET", "/health"), ("POST", "/gravity/postbacks")}
MISSING = "zz-missing-id"


@dataclass(frozen=True)
class Foreign:
    """Location B's things, each route's path parameters and bodies are filled with."""

    clinic: ApiClinic
    card_id: str
    subscription_id: str
    invoice_id: str
    payment_id: str
    deposit_id: str
    deposit_payment_id: str
    refund_request_id: str

    def path_value(self, path: str, name: str) -> str:
        if path.startswith("/card-deposits/"):
            return self.deposit_payment_id
        values = {
            "location_id": self.clinic.location_id,
            "client_id": self.clinic.client_id,
            "pet_id": self.clinic.pet_id,
            "plan_id": self.clinic.plan_id,
            "subscription_id": self.subscription_id,
            "invoice_id": self.invoice_id,
            "payment_id": self.payment_id,
            "deposit_id": self.deposit_id,
            "refund_request_id": self.refund_request_id,
            "card_id": self.card_id,
        }
        assert name in values, f"the route walk does not know path parameter {name} ({path}): add it to Foreign"
        return values[name]

    def body(self, method: str, path: str) -> dict[str, Any] | None:
        b = self.clinic
        bodies: dict[tuple[str, str], dict[str, Any] | None] = {
            ("POST", "/locations"): {"name": "Elsewhere", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID},
            ("PATCH", "/locations/{location_id}/settings"): {"name": "Renamed"},
            ("POST", "/locations/{location_id}/terminals"): {"device_name": "counter-2"},
            ("POST", "/clients"): {"location_id": b.location_id, "name": "Mallory"},
            ("POST", "/clients/{client_id}/pets"): {"name": "Rex"},
            ("POST", "/clients/{client_id}/cards"): {
                "gravity_ref": "ref-00000000001",
                "external_transaction_id": "ext-00000000001",
                "masked_number": "************1111",
                "brand": "VS",
                "exp_month": 12,
                "exp_year": 2030,
            },
            ("POST", "/plans"): {"location_id": b.location_id, "name": "Copy", "price_cents": 100},
            ("PATCH", "/plans/{plan_id}"): {"price_cents": 200},
            ("POST", "/plans/{plan_id}/retire"): None,
            ("POST", "/clients/{client_id}/cards/{card_id}/default"): None,
            ("DELETE", "/clients/{client_id}/cards/{card_id}"): None,
            ("POST", "/subscriptions"): enrollment(b, card_id=self.card_id, subscription_id="sub-stolen"),
            ("POST", "/subscriptions/{subscription_id}/cancel"): {"mode": "now"},
            ("POST", "/subscriptions/{subscription_id}/pause"): None,
            ("POST", "/subscriptions/{subscription_id}/resume"): None,
            ("POST", "/subscriptions/{subscription_id}/card"): {"card_id": self.card_id},
            ("POST", "/subscriptions/{subscription_id}/plan"): {"plan_id": b.plan_id},
            ("POST", "/subscriptions/{subscription_id}/pay-now"): None,
            ("POST", "/subscriptions/{subscription_id}/redemptions"): {"service_code": "EXAM"},
            ("POST", "/invoices"): {"client_id": b.client_id, "location_id": b.location_id, "lines": [{"description": "Exam", "amount_cents": 100}]},
            ("POST", "/terminal-payments"): {"location_id": b.location_id, "device_name": "counter-1", "invoice_id": self.invoice_id},
            ("POST", "/terminal-payments/{payment_id}/cancel"): None,
            ("POST", "/deposits"): {"client_id": b.client_id, "card_id": self.card_id, "amount_cents": 500},
            ("POST", "/deposits/{deposit_id}/refund"): None,
            ("POST", "/payments/{payment_id}/refunds"): {"amount_cents": 100},
            ("POST", "/invoices/{invoice_id}/cancel"): {"reason": "not mine"},
        }
        if method == "GET":
            return None
        assert (method, path) in bodies, f"the route walk has no body for {method} {path}: add one to Foreign.body"
        return bodies[(method, path)]


def required_query(path: str) -> dict[str, str]:
    """The query a route cannot answer without (a finance period or day), as of today."""
    today = date.today()
    if path in ("/finance/report", "/finance/ledger/balances"):
        return {"period": today.strftime("%Y-%m")}
    if path in ("/finance/reconciliation", "/finance/journal"):
        return {"date": today.isoformat()}
    return {}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def foreign_location(api: httpx.AsyncClient, sandbox_server: SandboxServer) -> Foreign:
    """Location B with one of everything: a subscription whose first cycle is paid, a card deposit and a refund."""
    clinic = await build_clinic(api, price_cents=4_500)
    card = ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    sub = ok(await api.post("/subscriptions", json=enrollment(clinic), headers=key()), 201)
    invoice = await eventually(lambda: paid_invoice(api, clinic.client_id))
    payment_id = ok(await api.get(f"/invoices/{invoice['id']}"))["payments"][0]["id"]
    deposit = ok(await api.post("/deposits", json={"client_id": clinic.client_id, "card_id": card["id"], "amount_cents": 2_000}, headers=key()), 201)
    refund = ok(await api.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 100}, headers=key()))
    return Foreign(
        clinic, card["id"], sub["subscription_id"], invoice["id"], payment_id, deposit["deposit_id"], deposit["payment_id"], refund["refund_request_id"]
    )


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's row count, and each row of the tables a refused command could change in place."""
    with engine.connect() as connection:
        tables = [row[0] for row in connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        counts = {table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar() for table in tables}
        rows = {
            table: sorted(str(row) for row in connection.execute(text(f'SELECT t::text FROM "{table}" t')))
            for table in ("location", "subscription", "saved_card", "invoice", "payment", "deposit", "refund")
        }
    return {"counts": counts, "rows": rows}


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The API routes among `routes`, those of included routers too (which FastAPI keeps nested)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif getattr(route, "original_router", None) is not None:
            found.extend(api_routes(route.original_router.routes))
    return found


def routes(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path template, path parameter names) of every route the app serves behind a token
    (the documentation pages, outside the schema, are public)."""
    found = []
    for route in api_routes(app.routes):
        for method in sorted(route.methods or ()):
            if (method, route.path) not in UNPROTECTED and route.include_in_schema:
                found.append((method, route.path, re.findall(r"{(\w+)}", route.path)))
    return found


def without(body: Any, value: str) -> str:
    return json.dumps(body).replace(value, "<id>")


@pytest.mark.parametrize("scope", ["front_desk", "billing"])
async def test_a_token_of_one_location_finds_nothing_of_another_on_any_route(
    scope: str, api: httpx.AsyncClient, db: Engine, api_app: FastAPI, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    home = await build_clinic(api)
    foreign = await foreign_location(api, sandbox_server)
    token = create_token(db, name=f"{scope}-a", scope=scope, locations=[home.location_id])
    before = snapshot(db)
    walked = 0
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {token}", **STAFF}, timeout=30.0) as own:
        for method, path, params in routes(api_app):
            url = path.format(**{name: foreign.path_value(path, name) for name in params})
            body = foreign.body(method, path)
            answer = await own.request(method, url, json=body, params=required_query(path), headers=key() if method == "POST" else {})
            walked += 1
            if answer.status_code == 403:
                assert scope in answer.json()["message"], (method, path, answer.text)
                continue
            if method == "GET" and not params:
                assert answer.status_code == 200, (method, path, answer.text)  # a list: only what the token reaches
                for value in (foreign.clinic.location_id, foreign.clinic.client_id, foreign.subscription_id, foreign.payment_id):
                    assert value not in answer.text, (method, path, value)
                continue
            if params:
                assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
                # The same answer as for an id that does not exist at all.
                missing = await own.request(method, path.format(**dict.fromkeys(params, MISSING)), json=body, headers=key() if method == "POST" else {})
                assert missing.status_code == 404, (method, path, missing.text)
                value = foreign.path_value(path, params[0])
                assert without(answer.json(), value) == without(missing.json(), MISSING), (method, path)
            else:
                # A foreign id in the body is refused as an unknown one.
                body_answer = answer.json()
                assert answer.status_code == 422 and body_answer["error"] == "refused", (method, path, answer.text)
                assert "unknown" in body_answer["message"], (method, path, answer.text)
        assert walked >= 30
        # The token does work at its own location: the refusals above are about reach, not a broken token.
        ok(await own.get(f"/clients/{home.client_id}"))
        ok(await own.post(f"/clients/{home.client_id}/pets", json={"name": "Milo"}, headers=key()), 201)
    after = snapshot(db)
    for table in ("pet", "audit_entry", "api_idempotency"):  # the one pet added at home
        after["counts"][table] -= 1
    assert after == before


async def test_a_scope_that_does_not_allow_a_route_answers_403_naming_it(
    api: httpx.AsyncClient, db: Engine, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    home = await build_clinic(api)
    finance = create_token(db, name="finance-a", scope="finance", locations=[home.location_id])
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {finance}"}) as own:
        ok(await own.get(f"/clients/{home.client_id}"))
        body = refused(await own.post("/clients", json={"location_id": home.location_id, "name": "New"}, headers=key()), 403, "Authorization")
        assert body["error"] == "forbidden" and "finance" in body["message"]
        refused(await own.patch(f"/locations/{home.location_id}/settings", json={"name": "X"}), 403, "Authorization")
        # A staff header the API cannot keep is refused naming it, before anything else.
        refused(await own.get(f"/clients/{home.client_id}", headers={b"X-Billing-Staff": "Pat\x85".encode("latin-1")}), 400, "X-Billing-Staff")
        refused(await own.get(f"/clients/{home.client_id}", headers={"X-Billing-Staff": "p" * 101}), 400, "X-Billing-Staff")
    assert ok(await api.get(f"/clients/{home.client_id}"))["name"] == "Dana Whitfield"


async def test_the_event_feed_holds_only_the_events_of_the_locations_reached(
    api: httpx.AsyncClient, db: Engine, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    home = await build_clinic(api)
    ok(
        await api.post(
            "/invoices", json={"client_id": home.client_id, "location_id": home.location_id, "lines": [{"description": "Exam", "amount_cents": 8_500}]}
        ),
        201,
    )
    foreign = await foreign_location(api, sandbox_server)
    everything = ok(await api.get("/events", params={"limit": 1000}))["events"]
    home_streams = {f"client:{home.client_id}"}
    foreign_streams = {f"client:{foreign.clinic.client_id}", f"subscription:{foreign.subscription_id}"}
    assert {e["stream"] for e in everything} == home_streams | foreign_streams

    finance = create_token(db, name="finance-a", scope="finance", locations=[home.location_id])
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {finance}"}) as own:
        page = ok(await own.get("/events", params={"limit": 1000}))
        assert page["events"] and {e["stream"] for e in page["events"]} == home_streams
        assert ok(await own.get("/events", params={"stream": f"subscription:{foreign.subscription_id}"}))["events"] == []
    every = create_token(db, name="finance-all", scope="finance", locations=None)
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {every}"}) as own:
        assert len(ok(await own.get("/events", params={"limit": 1000}))["events"]) == len(everything)


async def test_a_revoked_or_forged_token_is_refused_and_only_a_hash_is_stored(
    api: httpx.AsyncClient, db: Engine, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    home = await build_clinic(api)
    token = create_token(db, name="desk-1", scope="front_desk", locations=[home.location_id])
    secret = token.split("_", 2)[2]
    with db.connect() as connection:
        dump = "\n".join(str(row) for row in connection.execute(text("SELECT t::text FROM api_token t")))
    assert "desk-1" in dump and secret not in dump and token not in dump

    async with httpx.AsyncClient(base_url=api_server.url) as anyone:
        read = f"/clients/{home.client_id}"
        ok(await anyone.get(read, headers={"Authorization": f"Bearer {token}"}))
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        refused(await anyone.get(read, headers={"Authorization": f"Bearer {forged}"}), 401, "Authorization")
        assert revoke_token(db, "desk-1") is True
        refused(await anyone.get(read, headers={"Authorization": f"Bearer {token}"}), 401, "Authorization")
        refused(
            await anyone.post("/clients", json={"location_id": home.location_id, "name": "X"}, headers={"Authorization": f"Bearer {token}", **key()}),
            401,
            "Authorization",
        )
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM client")).scalar() == 1


async def test_the_actor_is_recorded_for_a_refund_and_a_subscription_cancel(
    api: httpx.AsyncClient, db: Engine, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    clinic = await build_clinic(api, price_cents=4_500)
    ok(await api.post(f"/clients/{clinic.client_id}/cards", json=await tokenize(sandbox_server)), 201)
    token = create_token(db, name="clinic-system", scope="billing", locations=[clinic.location_id])
    staff = {"Authorization": f"Bearer {token}", "X-Billing-Staff": "Dr. Rivera"}
    async with httpx.AsyncClient(base_url=api_server.url, headers=staff, timeout=30.0) as own:
        sub_id = ok(await own.post("/subscriptions", json=enrollment(clinic), headers=key()), 201)["subscription_id"]
        invoice = await eventually(lambda: paid_invoice(own, clinic.client_id))
        payment_id = ok(await own.get(f"/invoices/{invoice['id']}"))["payments"][0]["id"]
        refund_key = key()
        ok(await own.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 500, "reason": "exam not done"}, headers=refund_key))
        ok(await own.post(f"/payments/{payment_id}/refunds", json={"amount_cents": 500, "reason": "exam not done"}, headers=refund_key))  # a replay
        ok(await own.post(f"/subscriptions/{sub_id}/cancel", json={"mode": "term_end"}, headers={**key(), "X-Billing-Staff": "Sam Lee"}))

    refunds = audit_trail(db, "payment", payment_id, frozenset({clinic.location_id}))
    assert [(e.action, e.token, e.staff, e.request_key) for e in refunds] == [
        ("payment.refund", "clinic-system", "Dr. Rivera", f"clinic-system:{refund_key['Idempotency-Key']}")
    ]
    assert refunds[0].workflow_id and refunds[0].location_id == clinic.location_id
    trail = audit_trail(db, "subscription", sub_id, None)
    assert [(e.action, e.token, e.staff) for e in trail] == [
        ("subscription.enroll", "clinic-system", "Dr. Rivera"),
        ("subscription.cancel", "clinic-system", "Sam Lee"),
    ]
    assert trail[1].workflow_id == f"subscription:{sub_id}"
    assert audit_trail(db, "subscription", sub_id, frozenset({"loc-elsewhere"})) == []


async def test_two_tokens_sending_the_same_key_start_two_terminal_payments(
    api: httpx.AsyncClient, db: Engine, api_server: ThreadedUvicorn, sandbox_server: SandboxServer
) -> None:
    """A key names a movement only within its token: a second clinic's front desk that happens to
    send the same Idempotency-Key starts its own payment, never joins (and sees) the first clinic's."""
    started = {}
    same_key = {"Idempotency-Key": "counter-sale-0001"}
    for name, device in (("desk-a", "counter-1"), ("desk-b", "counter-2")):  # one sandbox merchant: two devices
        clinic = await build_clinic(api)
        token = create_token(db, name=name, scope="front_desk", locations=[clinic.location_id])
        async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as own:
            invoice = ok(
                await own.post(
                    "/invoices",
                    json={"client_id": clinic.client_id, "location_id": clinic.location_id, "lines": [{"description": "Exam", "amount_cents": 8_500}]},
                    headers=key(),
                ),
                201,
            )
            body = {"location_id": clinic.location_id, "device_name": device, "invoice_id": invoice["id"]}
            payment = ok(await own.post("/terminal-payments", json=body, headers=same_key), 202)
            ok(await own.get(f"/terminal-payments/{payment['payment_id']}"))  # its own, at its own location
            started[name] = payment["payment_id"]
    assert started["desk-a"] != started["desk-b"]
