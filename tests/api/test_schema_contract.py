"""What the OpenAPI schema promises, checked against the API that serves it: every refusal names a
field, and a 405 lists, in `Allow`, every method the path serves."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import API_TOKEN
from tests.api.helpers import ok, refused


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
