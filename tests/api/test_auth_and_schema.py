"""The credential on every route but /health, and the OpenAPI schema the billing system codes against."""

from __future__ import annotations

import re

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from foundation.settings import Settings
from tests.api.conftest import API_TOKEN

EXPECTED_ROUTES = {
    ("get", "/health"),
    ("post", "/locations"),
    ("get", "/locations/{location_id}"),
    ("patch", "/locations/{location_id}/settings"),
    ("get", "/locations/{location_id}/terminals"),
    ("post", "/locations/{location_id}/terminals"),
    ("post", "/clients"),
    ("get", "/clients/{client_id}"),
    ("post", "/clients/{client_id}/pets"),
    ("get", "/clients/{client_id}/pets"),
    ("get", "/pets/{pet_id}"),
    ("get", "/clients/{client_id}/cards"),
    ("post", "/clients/{client_id}/cards"),
    ("post", "/clients/{client_id}/cards/{card_id}/default"),
    ("delete", "/clients/{client_id}/cards/{card_id}"),
    ("get", "/cards/expiring"),
    ("post", "/plans"),
    ("get", "/plans/{plan_id}"),
    ("patch", "/plans/{plan_id}"),
    ("post", "/plans/{plan_id}/retire"),
    ("get", "/plans/{plan_id}/versions"),
    ("post", "/subscriptions"),
    ("get", "/subscriptions/{subscription_id}"),
    ("post", "/subscriptions/{subscription_id}/cancel"),
    ("post", "/subscriptions/{subscription_id}/pause"),
    ("post", "/subscriptions/{subscription_id}/resume"),
    ("post", "/subscriptions/{subscription_id}/card"),
    ("post", "/subscriptions/{subscription_id}/plan"),
    ("post", "/subscriptions/{subscription_id}/pay-now"),
    ("post", "/subscriptions/{subscription_id}/redemptions"),
    ("get", "/invoices/{invoice_id}"),
    ("get", "/clients/{client_id}/invoices"),
    ("get", "/events"),
    ("get", "/subscriptions"),
    ("get", "/subscriptions/{subscription_id}/timeline"),
    ("get", "/plans"),
    ("get", "/clients"),
    ("get", "/invoices"),
    ("get", "/payments"),
    ("get", "/refunds"),
    ("get", "/deposits"),
    ("post", "/invoices"),
    ("post", "/invoices/{invoice_id}/cancel"),
    ("post", "/terminal-payments"),
    ("get", "/terminal-payments/{payment_id}"),
    ("post", "/terminal-payments/{payment_id}/cancel"),
    ("post", "/deposits"),
    ("get", "/card-deposits/{payment_id}"),
    ("post", "/deposits/{deposit_id}/refund"),
    ("post", "/payments/{payment_id}/refunds"),
    ("get", "/refunds/{refund_request_id}"),
    ("post", "/gravity/postbacks"),
    ("get", "/finance/report"),
    ("get", "/finance/audit/subscriptions/{subscription_id}"),
    ("get", "/finance/audit/clients/{client_id}"),
    ("get", "/finance/reconciliation"),
    ("get", "/finance/ledger/balances"),
    ("get", "/finance/journal"),
}
UNPROTECTED = {("get", "/health"), ("post", "/gravity/postbacks")}
# POSTs that can move money: their Idempotency-Key is required (400 without one).
MONEY_POSTS = {
    "/subscriptions",
    "/subscriptions/{subscription_id}/cancel",
    "/subscriptions/{subscription_id}/plan",
    "/subscriptions/{subscription_id}/pay-now",
    "/terminal-payments",
    "/deposits",
    "/deposits/{deposit_id}/refund",
    "/payments/{payment_id}/refunds",
    "/invoices/{invoice_id}/cancel",
}


async def schema(client: httpx.AsyncClient) -> dict:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item}


async def test_health_needs_no_credential(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_openapi_lists_every_route_and_declares_the_bearer_scheme(anonymous: httpx.AsyncClient) -> None:
    spec = await schema(anonymous)
    assert operations(spec) == EXPECTED_ROUTES
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for method, path in EXPECTED_ROUTES:
        operation = spec["paths"][path][method]
        if (method, path) in UNPROTECTED:
            assert "security" not in operation
            continue
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        assert operation["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        headers = sorted((p["name"], p.get("required", False)) for p in operation.get("parameters", []) if p["in"] == "header")
        expected = [("Idempotency-Key", path in MONEY_POSTS)] if method == "post" else []
        assert headers == sorted([*expected, ("X-Billing-Staff", False)]), (method, path)
    error_body = spec["components"]["schemas"]["ErrorBody"]
    assert set(error_body["properties"]) == {"error", "message", "fields"}


async def test_every_protected_route_refuses_a_missing_or_wrong_credential(anonymous: httpx.AsyncClient) -> None:
    await schema(anonymous)
    bad_headers = [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {API_TOKEN}x"},
    ]
    for method, path in sorted(EXPECTED_ROUTES - UNPROTECTED):
        url = re.sub(r"\{[^}]+\}", "x", path)
        for headers in bad_headers:
            response = await anonymous.request(method.upper(), url, headers=headers, json={} if method != "get" else None)
            assert response.status_code == 401, (method, url, headers, response.text)
            body = response.json()
            assert body["error"] == "unauthorized" and body["message"]
            assert response.headers["www-authenticate"] == "Bearer"
            assert API_TOKEN not in response.text


async def test_unknown_route_is_a_json_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_app_is_never_built_without_a_token() -> None:
    with pytest.raises(ValueError, match="BILLING_API_TOKEN"):
        create_app(None, None, Settings.model_construct(api_token=None), task_queue="q")  # type: ignore[arg-type]  # refused before either is used
    with pytest.raises(ValueError, match="BILLING_EVENTS_SECRET"):
        create_app(
            None,  # type: ignore[arg-type]  # refused before it is used
            None,  # type: ignore[arg-type]  # refused before it is used
            Settings.model_construct(api_token=SecretStr("t"), events_url="http://127.0.0.1:9/events", events_secret=None),
            task_queue="q",
        )
