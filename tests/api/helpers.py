"""Shortcuts for the API tests: build a clinic through the API, tokenize a sandbox card, wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.sandbox.server import SandboxServer
from tests.support.clinic import TEST_DEVICES

T = TypeVar("T")


@dataclass(frozen=True)
class ApiClinic:
    location_id: str
    client_id: str
    pet_id: str
    plan_id: str


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def refused(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    """Assert the API's error shape: the status, and a body naming `field` with a reason."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    assert any(f["field"] == field and f["reason"] for f in body["fields"]), body
    return body


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


async def build_clinic(
    api: httpx.AsyncClient, *, timezone: str = "America/Chicago", price_cents: int = 4_500, terminals: tuple[str, ...] = TEST_DEVICES
) -> ApiClinic:
    location = ok(await api.post("/locations", json={"name": "Lakeside", "timezone": timezone, "gravity_oid": SANDBOX_OID}), 201)
    for device in terminals:
        ok(await api.post(f"/locations/{location['id']}/terminals", json={"device_name": device}), 201)
    client = ok(await api.post("/clients", json={"location_id": location["id"], "name": "Dana Whitfield", "email": "dana@example.com"}), 201)
    pet = ok(await api.post(f"/clients/{client['id']}/pets", json={"name": "Biscuit", "species": "dog"}), 201)
    plan = ok(
        await api.post(
            "/plans",
            json={
                "location_id": location["id"],
                "name": "Puppy Wellness",
                "price_cents": price_cents,
                "auto_renew": False,
                "cancellation_policy": "refund_unused",
                "services": [{"code": "EXAM", "name": "Wellness exam", "retail_cents": 6_500, "quantity": 2}],
            },
        ),
        201,
    )
    return ApiClinic(location["id"], client["id"], pet["id"], plan["id"])


async def tokenize(server: SandboxServer, number: str = "4111111111111111", exp_mmyy: str = "1230") -> dict[str, Any]:
    """Tokenize at the sandbox the way the billing system would; returns the card body to POST."""
    external_id = str(uuid.uuid4())
    async with GravityClient(server.base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        result = await gravity.tokenize(card_number=number, exp_mmyy=exp_mmyy, external_id=external_id)
    assert result.card_ref is not None, result.result_message
    return {
        "gravity_ref": result.card_ref,
        "external_transaction_id": external_id,
        "masked_number": result.masked_account,
        "brand": result.card_brand or "VS",
        "exp_month": int(exp_mmyy[:2]),
        "exp_year": 2000 + int(exp_mmyy[2:]),
        "fingerprint": result.fingerprint,
    }


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0) -> T:
    """Poll `probe` until it returns something truthy (real time: the workflow runs for real)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
