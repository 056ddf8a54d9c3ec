"""Text at the edge: NUL, control characters and bidirectional overrides are refused in every text
field of every request body, in every path id, query string and Idempotency-Key, and in a signed
postback, each with a 422 (400 for the postback) naming the field; never a 500, nothing written."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from gravity.postback import sign
from models.clinic import Client, Location, Pet
from tests.api.conftest import POSTBACK_SECRET
from tests.api.helpers import build_clinic, count, ok, refused

#: NUL (PostgreSQL cannot store it), a terminal escape and bell, the bidi override of issue 18, an
#: isolate, a newline, a C1 control, the Unicode line separator and an unpaired surrogate.
BAD_TEXT = ["a\x00b", "\u202eevil\x07\x1b[31m", "x\u2066y", "two\nlines", "c1\x85", "sep\u2028", "lone\ud800"]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def string_fields(spec: dict[str, Any], schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Dotted names of every string a body of `schema` can carry (array items as `.0`)."""
    schema = _resolve(spec, schema)
    for option in schema.get("anyOf", []):
        yield from string_fields(spec, option, path)
    if schema.get("type") == "string":
        yield path
    for name, prop in schema.get("properties", {}).items():
        yield from string_fields(spec, prop, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from string_fields(spec, schema["items"], f"{path}.0")


def body_with(field: str, value: str) -> Any:
    """The smallest body that puts `value` at the dotted `field` (`lines.0.description`)."""
    parts = field.split(".")

    def build(index: int) -> Any:
        if index == len(parts):
            return value
        return [build(index + 1)] if parts[index].isdigit() else {parts[index]: build(index + 1)}

    return build(0)


def json_bytes(body: Any) -> bytes:
    """JSON as the API reads it; `ensure_ascii` spells an unpaired surrogate as the escape JSON allows."""
    return json.dumps(body).encode()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


async def test_every_text_field_of_every_request_body_refuses_unsafe_characters(api: httpx.AsyncClient, db: Engine) -> None:
    spec = ok(await api.get("/openapi.json"))
    checked = 0
    for method, path, operation in operations(spec):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None or path == "/gravity/postbacks":  # raw signed bytes: tested below
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for field in string_fields(spec, content["schema"]):
            if field.startswith("dunning."):  # read by workflows.dunning inside the route: tested below
                continue
            for bad in BAD_TEXT:
                response = await api.request(
                    method,
                    url,
                    content=json_bytes(body_with(field, bad)),
                    headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
                )
                assert response.status_code == 422, (method, path, field, repr(bad), response.text)
                named = [f["field"] for f in response.json()["fields"]]
                assert field in named, (method, path, field, repr(bad), named)
                checked += 1
    assert checked > 200  # every route's text fields, not an empty walk
    assert (count(db, Location), count(db, Client)) == (0, 0)


async def test_a_name_with_a_bidi_override_and_escapes_is_refused_and_unicode_names_are_kept(api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    clients_before, pets_before = count(db, Client), count(db, Pet)
    for bad in ("\u202eevil\x07\x1b[31m", "Dana\x00Whitfield", "Dana\tWhitfield"):
        answer = refused(await api.post("/clients", json={"location_id": clinic.location_id, "name": bad}), 422, "name")
        assert answer["error"] == "validation" and "U+" in answer["message"]
        refused(await api.post(f"/clients/{clinic.client_id}/pets", json={"name": bad}), 422, "name")
    refused(await api.post("/clients", json={"location_id": clinic.location_id, "name": "Dana", "email": "dana\x00@example.com"}), 422, "email")
    assert (count(db, Client), count(db, Pet)) == (clients_before, pets_before)
    kept = ok(await api.post("/clients", json={"location_id": clinic.location_id, "name": "Zoë Ñúñez-李 (أحمد)", "email": "zoë@exämple.com"}), 201)
    assert ok(await api.get(f"/clients/{kept['id']}"))["name"] == "Zoë Ñúñez-李 (أحمد)"


async def test_dunning_text_is_refused_inside_a_valid_plan(api: httpx.AsyncClient, db: Engine) -> None:
    for bad in BAD_TEXT:
        body = {"name": "P", "price_cents": 100, "dunning": {"retry_offsets_days": [3], "on_exhausted": bad}}
        response = await api.post("/plans", content=json_bytes(body), headers={"Content-Type": "application/json"})
        refused(response, 422, "dunning")


def _with_path_value(path: str, name: str, value: str) -> str:
    """`path` with `value` for the parameter `name` and "x" for every other."""
    return re.sub(r"\{[^}]+\}", lambda m: value if m.group(0) == "{" + name + "}" else "x", path)


async def test_path_ids_query_text_and_idempotency_keys_refuse_unsafe_characters(api: httpx.AsyncClient, db: Engine) -> None:
    spec = ok(await api.get("/openapi.json"))
    for method, path, operation in operations(spec):
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        for name in names:
            for bad in ("a%00b", "%E2%80%AEevil", "x%1B%5B31m", "x%07"):
                url = _with_path_value(path, name, bad)
                response = await api.request(method, url, json={} if method != "GET" else None, headers={"Idempotency-Key": uuid.uuid4().hex})
                refused(response, 422, name)
    for bad in ("a\x00b", "\u202e", "x\x1b"):
        refused(await api.get("/events", params={"stream": bad}), 422, "stream")
    for bad_key in (b"key\x85", b"key\x9b31m"):  # C1 controls: what a header's Latin-1 can carry
        refused(await api.post("/plans", json={"name": "P", "price_cents": 100}, headers={b"Idempotency-Key": bad_key}), 422, "Idempotency-Key")
        refused(await api.post("/subscriptions/x/pay-now", headers={b"Idempotency-Key": bad_key}), 422, "Idempotency-Key")


@pytest.mark.parametrize("transaction_id", ["a\x00b", "\u202e123", "x\ud800"])
async def test_a_signed_postback_with_unsafe_text_is_a_400_naming_the_field(anonymous: httpx.AsyncClient, transaction_id: str) -> None:
    body = json_bytes({"externalTransactionId": transaction_id, "resultStatus": "true", "transactionType": "CreditSale"})
    response = await anonymous.post(
        "/gravity/postbacks", content=body, headers={"hmac-signature": sign(body, POSTBACK_SECRET), "Content-Type": "application/json"}
    )
    refused(response, 400, "externalTransactionId")
    wrapped = json_bytes({"transactionResponse": {"externalTransactionId": transaction_id}})
    response = await anonymous.post("/gravity/postbacks", content=wrapped, headers={"hmac-signature": sign(wrapped, POSTBACK_SECRET)})
    refused(response, 400, "transactionResponse.externalTransactionId")
