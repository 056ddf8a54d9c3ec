"""What the OpenAPI schema promises, checked against the API that serves it: a 405 lists, in `Allow`,
every method the path serves."""

from __future__ import annotations

import re

import httpx

from tests.api.helpers import ok


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
