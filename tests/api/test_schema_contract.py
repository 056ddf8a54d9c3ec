"""What the OpenAPI schema promises, checked against the API that serves it: the Idempotency-Key
rules, the 400/401/404/409/413/422 answers and each route's business refusals; every refusal names a
field; and a 405 lists, in `Allow`, every method the path serves."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.conftest import API_TOKEN
from tests.api.helpers import ok, refused
from tests.api.test_auth_and_schema import EXPECTED_ROUTES, MONEY_POSTS, UNPROTECTED

ERROR_REF = "#/components/schemas/ErrorBody"
#: Routes whose business rules refuse some well-formed requests (422 "refused") and what they mention.
BUSINESS_REFUSALS = {
    ("post", "/clients"): "location",
    ("post", "/clients/{client_id}/cards"): "expired",
    ("post", "/clients/{client_id}/cards/{card_id}/default"): "disabled",
    ("post", "/plans"): "max_invoice_cents",
    ("post", "/subscriptions"): "start_date",
    ("post", "/subscriptions/{subscription_id}/card"): "card",
    ("post", "/subscriptions/{subscription_id}/plan"): "plan",
    ("post", "/subscriptions/{subscription_id}/redemptions"): "service",
    ("post", "/invoices"): "max_invoice_lines",
    ("post", "/terminal-payments"): "max_invoice_cents",
    ("post", "/deposits"): "max_invoice_cents",
    ("post", "/deposits/{deposit_id}/refund"): "card",
    ("post", "/payments/{payment_id}/refunds"): "max_invoice_cents",
    ("post", "/invoices/{invoice_id}/cancel"): "subscription",
    ("get", "/finance/report"): "location_id",
    ("get", "/finance/reconciliation"): "location_id",
    ("get", "/finance/ledger/balances"): "location_id",
    ("get", "/finance/journal"): "location_id",
}


def error_answer(operation: dict[str, Any], status: str) -> dict[str, Any]:
    response = operation["responses"].get(status)
    assert response is not None, status
    assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, status
    return response


async def test_every_route_documents_its_refusals(anonymous: httpx.AsyncClient) -> None:
    spec = ok(await anonymous.get("/openapi.json"))
    for method, path in sorted(EXPECTED_ROUTES):
        operation = spec["paths"][path][method]
        where = (method, path)
        error_answer(operation, "413")
        if where in UNPROTECTED:
            continue
        for status in ("401", "422"):
            error_answer(operation, status)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], where
        if "{" in path:
            error_answer(operation, "404")
        error_answer(operation, "403")
        (staff,) = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "X-Billing-Staff"]
        assert staff["schema"]["anyOf"][0]["maxLength"] == 100 and "X-Billing-Staff" in error_answer(operation, "400")["description"], where
        if method == "post":
            (header,) = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
            schema = next((option for option in header["schema"].get("anyOf", []) if option["type"] == "string"), header["schema"])
            assert (schema["minLength"], schema["maxLength"]) == (1, 200), where
            assert re.fullmatch(schema["pattern"], "a-UUID-like-key") and not re.fullmatch(schema["pattern"], "tab\tkey"), where
            for rule in ("409", "Idempotent-Replayed", "same key", "lease"):
                assert rule in header["description"], (where, rule)
            assert "Idempotency-Key" in error_answer(operation, "409")["description"], where
            replayed = [s for s in operation["responses"] if s.startswith("2") and "Idempotent-Replayed" in operation["responses"][s].get("headers", {})]
            assert replayed, where
            if path in MONEY_POSTS:
                assert header["required"] and "Required" in header["description"], where
                assert "Idempotency-Key" in error_answer(operation, "400")["description"], where
        if where in BUSINESS_REFUSALS:
            described = error_answer(operation, "422")["description"]
            assert "refused" in described and BUSINESS_REFUSALS[where] in described, (where, described)
    postback = spec["paths"]["/gravity/postbacks"]["post"]
    for status in ("400", "401", "503"):
        assert status in postback["responses"]
    assert [p["name"] for p in postback["parameters"] if p["in"] == "header"] == ["hmac-signature"]
    assert "requestBody" in postback
    assert set(spec["paths"]["/health"]["get"]["responses"]) >= {"200", "503"}


async def test_the_schema_states_the_input_rules(anonymous: httpx.AsyncClient) -> None:
    spec = ok(await anonymous.get("/openapi.json"))
    schemas = spec["components"]["schemas"]
    name = schemas["ClientIn"]["properties"]["name"]
    assert re.fullmatch(name["pattern"], "Zoë Ñúñez") and not re.fullmatch(name["pattern"], "\u202eevil")
    assert schemas["LineIn"]["properties"]["amount_cents"]["type"] == "integer"
    assert schemas["CounterInvoiceIn"]["properties"]["lines"]["maxItems"] == 100
    assert "America/Chicago" in schemas["LocationIn"]["properties"]["timezone"]["enum"]
    after = next(p for p in spec["paths"]["/events"]["get"]["parameters"] if p["name"] == "after")
    assert after["schema"]["maximum"] == 2**63 - 1
    client_id = spec["paths"]["/clients/{client_id}"]["get"]["parameters"][0]["schema"]
    assert (client_id["maxLength"], client_id["pattern"]) == (64, r"^[A-Za-z0-9_\-]+$")
    created = spec["paths"]["/locations"]["post"]["responses"]["201"]["links"]
    assert created["AddClient"]["requestBody"] == {"location_id": "$response.body#/id"}


async def test_a_405_lists_every_method_the_path_serves(api: httpx.AsyncClient) -> None:
    spec = ok(await api.get("/openapi.json"))
    for path, item in spec["paths"].items():
        served = {method.upper() for method in item}
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - served:
            response = await api.request(method, url)
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.headers["allow"].split(", ")) == served, (method, path, response.headers["allow"])
            body = response.json()
            assert body["error"] == "method_not_allowed" and body["fields"][0]["field"] == "method", body


async def test_every_refusal_names_a_field(anonymous: httpx.AsyncClient) -> None:
    answer = refused(await anonymous.get("/locations/x"), 401, "Authorization")
    assert API_TOKEN not in str(answer)
    refused(await anonymous.get("/no-such-route"), 404, "path")
    not_utf8 = await anonymous.post("/plans", content=b'{"name": "\xff"}', headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    refused(not_utf8, 422, "body")
    answer = refused(await anonymous.post("/plans", json={"name": "a\u202e", "price_cents": 1}, headers={"Authorization": f"Bearer {API_TOKEN}"}), 422, "name")
    assert not answer["fields"][0]["reason"].startswith("Value error")
