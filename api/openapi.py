"""The OpenAPI schema the billing system codes against, completed with what every route shares.

FastAPI writes each route's own parameters, bodies and answers. What cuts across routes is added
here once, from the rules that enforce it, so no route can forget it: the 413 of the body limit, the
400 and 409 of the Idempotency-Key, the headers of 401, 202 and replayed answers, and the links from each created thing to what can be done with it
(which is also how a stateful fuzzer walks the API).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.deps import IDEMPOTENCY_HEADER, KEY_RULES, MAX_STAFF_LENGTH
from api.errors import STAFF_HEADER, ErrorBody
from api.examples import restore_examples

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}

#: (source method, source path, status) -> {link name: (target method, target path, parameters, request body)}.
Link = tuple[str, str, dict[str, str], dict[str, str] | None]
LINKS: dict[tuple[str, str, str], dict[str, Link]] = {
    ("post", "/locations", "201"): {
        "ReadLocation": ("get", "/locations/{location_id}", {"location_id": "$response.body#/id"}, None),
        "ChangeSettings": ("patch", "/locations/{location_id}/settings", {"location_id": "$response.body#/id"}, None),
        "ListTerminals": ("get", "/locations/{location_id}/terminals", {"location_id": "$response.body#/id"}, None),
        "AddTerminal": ("post", "/locations/{location_id}/terminals", {"location_id": "$response.body#/id"}, None),
        "AddClient": ("post", "/clients", {}, {"location_id": "$response.body#/id"}),
        "AddPlan": ("post", "/plans", {}, {"location_id": "$response.body#/id"}),
    },
    ("post", "/clients", "201"): {
        "ReadClient": ("get", "/clients/{client_id}", {"client_id": "$response.body#/id"}, None),
        "AddPet": ("post", "/clients/{client_id}/pets", {"client_id": "$response.body#/id"}, None),
        "ListPets": ("get", "/clients/{client_id}/pets", {"client_id": "$response.body#/id"}, None),
        "AddCard": ("post", "/clients/{client_id}/cards", {"client_id": "$response.body#/id"}, None),
        "ListCards": ("get", "/clients/{client_id}/cards", {"client_id": "$response.body#/id"}, None),
        "ListInvoices": ("get", "/clients/{client_id}/invoices", {"client_id": "$response.body#/id"}, None),
        "AddCounterInvoice": ("post", "/invoices", {}, {"client_id": "$response.body#/id", "location_id": "$response.body#/location_id"}),
        "TakeDeposit": ("post", "/deposits", {}, {"client_id": "$response.body#/id"}),
    },
    ("post", "/clients/{client_id}/pets", "201"): {
        "ReadPet": ("get", "/pets/{pet_id}", {"pet_id": "$response.body#/id"}, None),
    },
    ("post", "/clients/{client_id}/cards", "201"): {
        "DepositFromCard": ("post", "/deposits", {}, {"client_id": "$response.body#/client_id", "card_id": "$response.body#/id"}),
    },
    ("post", "/plans", "201"): {
        "ReadPlan": ("get", "/plans/{plan_id}", {"plan_id": "$response.body#/id"}, None),
    },
    ("post", "/subscriptions", "201"): {
        name: (method, path, {"subscription_id": "$response.body#/subscription_id"}, None)
        for name, method, path in (
            ("ReadSubscription", "get", "/subscriptions/{subscription_id}"),
            ("Timeline", "get", "/subscriptions/{subscription_id}/timeline"),
            ("Cancel", "post", "/subscriptions/{subscription_id}/cancel"),
            ("Pause", "post", "/subscriptions/{subscription_id}/pause"),
            ("Resume", "post", "/subscriptions/{subscription_id}/resume"),
            ("ChangeCard", "post", "/subscriptions/{subscription_id}/card"),
            ("ChangePlan", "post", "/subscriptions/{subscription_id}/plan"),
            ("PayNow", "post", "/subscriptions/{subscription_id}/pay-now"),
            ("Redeem", "post", "/subscriptions/{subscription_id}/redemptions"),
        )
    },
    ("post", "/invoices", "201"): {
        "ReadInvoice": ("get", "/invoices/{invoice_id}", {"invoice_id": "$response.body#/id"}, None),
        "CancelInvoice": ("post", "/invoices/{invoice_id}/cancel", {"invoice_id": "$response.body#/id"}, None),
        "PayAtCounter": ("post", "/terminal-payments", {}, {"invoice_id": "$response.body#/id", "location_id": "$response.body#/location_id"}),
    },
    ("get", "/invoices/{invoice_id}", "200"): {
        "RefundPayment": ("post", "/payments/{payment_id}/refunds", {"payment_id": "$response.body#/payments/0/id"}, None),
    },
    ("post", "/terminal-payments", "202"): {
        "ReadTerminalPayment": ("get", "/terminal-payments/{payment_id}", {"payment_id": "$response.body#/payment_id"}, None),
        "CancelTerminalPayment": ("post", "/terminal-payments/{payment_id}/cancel", {"payment_id": "$response.body#/payment_id"}, None),
    },
    ("post", "/deposits", "201"): {
        "ReadCardDeposit": ("get", "/card-deposits/{payment_id}", {"payment_id": "$response.body#/payment_id"}, None),
        "RefundDeposit": ("post", "/deposits/{deposit_id}/refund", {"deposit_id": "$response.body#/deposit_id"}, None),
    },
    ("post", "/payments/{payment_id}/refunds", "200"): {
        "ReadRefund": ("get", "/refunds/{refund_request_id}", {"refund_request_id": "$response.body#/refund_request_id"}, None),
    },
    ("post", "/deposits/{deposit_id}/refund", "200"): {
        "ReadRefund": ("get", "/refunds/{refund_request_id}", {"refund_request_id": "$response.body#/refund_request_id"}, None),
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _key_header(operation: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == IDEMPOTENCY_HEADER), None)


def _add_shared_answers(operation: dict[str, Any], max_body_bytes: int) -> None:
    """413 everywhere; 400 and 409 where an Idempotency-Key is required or honoured; the headers."""
    responses = operation.setdefault("responses", {})
    responses.setdefault("413", _error(f"error: payload_too_large: the body is larger than {max_body_bytes} bytes (refused before it is read whole)"))
    if any(p["in"] == "header" and p["name"] == STAFF_HEADER for p in operation.get("parameters", [])):
        responses.setdefault("400", _error(f"error: validation: the {STAFF_HEADER} header is not 1 to {MAX_STAFF_LENGTH} characters of clean text"))
    key = _key_header(operation)
    if key is not None:
        if key.get("required"):
            missing = f"error: validation: the required {IDEMPOTENCY_HEADER} header is missing"
            bad_request = responses.setdefault("400", _error(missing))
            if missing not in bad_request["description"]:
                bad_request["description"] += f"; or {missing}"
        repeat = f"{IDEMPOTENCY_HEADER} was used for another request, or its first request is still running"
        conflict = responses.setdefault("409", _error(f"error: conflict: {repeat}"))
        if repeat not in conflict["description"]:
            conflict["description"] += f"; or {repeat}"
        replayed = {
            "description": "true when this is the stored answer to an earlier request with the same key",
            "schema": {"type": "string", "enum": ["true"]},
        }
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = replayed
    if "401" in responses:
        responses["401"].setdefault("headers", {})["WWW-Authenticate"] = {"description": "Bearer", "schema": {"type": "string"}}
    for status in ("201", "202"):
        if status in responses and "status_url" in str(responses[status]):
            responses[status].setdefault("headers", {})["Location"] = {"description": "Where to poll (a 202 of a money movement)", "schema": {"type": "string"}}


def _add_links(spec: dict[str, Any]) -> None:
    operation_ids = {(method, path): operation["operationId"] for path, item in spec["paths"].items() for method, operation in item.items()}
    for (method, path, status), links in LINKS.items():
        response = spec["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {
                "operationId": operation_ids[(target_method, target_path)],
                **({"parameters": parameters} if parameters else {}),
                **({"requestBody": body} if body else {}),
            }
            for name, (target_method, target_path, parameters, body) in links.items()
        }


def build_schema(app: FastAPI, *, max_body_bytes: int) -> dict[str, Any]:
    """FastAPI's schema of `app`, with the shared answers and the links."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    restore_examples(spec)
    for item in spec["paths"].values():
        for operation in item.values():
            _add_shared_answers(operation, max_body_bytes)
    spec.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorBody", ErrorBody.model_json_schema())
    spec["info"]["description"] += f" Idempotency-Key (every POST): {KEY_RULES}"
    _add_links(spec)
    return spec


def install_schema(app: FastAPI, *, max_body_bytes: int) -> None:
    """Serve `build_schema` at /openapi.json (built once, on the first request for it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app, max_body_bytes=max_body_bytes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
