"""`billing cards list | default | remove | expiring` against the real stack, beside the API they
twin: the same operations behind both, so each refusal's line is exactly the API's `message` for
the same request, and nothing changes."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from gravity.sandbox.server import SandboxServer
from models.access import AuditEntry
from tests.api.helpers import build_clinic, eventually, ok, refused as api_refused, tokenize
from tests.cli import served_api
from tests.cli.conftest import Billing, Run, bad_input, refused

# The API under uvicorn beside the CLI, over the same database.
api_app = served_api.api_app
api_server = served_api.api_server
api = served_api.api


def same_refusal(run: Run, response: httpx.Response, status: int, field: str) -> str:
    """The CLI refused (exit 1) with one line that is exactly the API's message for the same request."""
    body = api_refused(response, status, field)
    line = refused(run)
    assert line == body["message"], (line, body)
    return line


def cli_audit(db: Engine, card_id: str) -> list[str]:
    with Session(db) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.subject_id == card_id).order_by(AuditEntry.id))  # type: ignore[arg-type]
        return [row.action for row in rows if row.token.startswith("cli:")]


async def test_cards_over_their_life_from_the_shell(billing: Billing, api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer) -> None:
    clinic = await build_clinic(api)
    today = date.today()
    cards_url = f"/clients/{clinic.client_id}/cards"
    expiring = ok(await api.post(cards_url, json=await tokenize(sandbox_server, "4012888888881881", today.strftime("%m%y"))), 201)
    lasting = ok(await api.post(cards_url, json=await tokenize(sandbox_server, "5555555555554444")), 201)

    listed = (await billing("cards", "list", clinic.client_id, "--json")).json()
    assert listed == ok(await api.get(cards_url))
    assert [(c["id"], c["is_default"]) for c in listed["cards"]] == [(expiring["id"], True), (lasting["id"], False)]
    table = await billing("cards", "list", clinic.client_id)
    assert table.exit_code == 0 and lasting["id"] in table.stdout and lasting["masked_number"] in table.stdout

    assert (await billing("cards", "default", clinic.client_id, lasting["id"], "--json")).json()["is_default"] is True
    assert [c["is_default"] for c in ok(await api.get(cards_url))["cards"]] == [False, True]
    assert cli_audit(db, lasting["id"]) == ["card.set_default"]

    # A subscription charging the card that expires this month: its next charge is next month.
    start = (today - timedelta(days=2)).isoformat()
    enrollment = {"client_id": clinic.client_id, "pet_id": clinic.pet_id, "plan_id": clinic.plan_id, "location_id": clinic.location_id, "start_date": start}
    sub_id = ok(await api.post("/subscriptions", json={**enrollment, "card_id": expiring["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex}), 201)[
        "subscription_id"
    ]

    async def expiring_now() -> list[dict[str, Any]]:  # once the workflow has written the next charge's date
        return (await billing("cards", "expiring", "--location", clinic.location_id, "--json")).json()["cards"]

    found = await eventually(expiring_now)
    assert [(item["card"]["id"], item["subscription_id"]) for item in found] == [(expiring["id"], sub_id)]
    assert found[0]["next_due_date"] == ok(await api.get("/cards/expiring", params={"location_id": clinic.location_id}))["cards"][0]["next_due_date"]
    assert (await billing("cards", "expiring", "--location", clinic.location_id, "--before", today.isoformat(), "--json")).json()["cards"] == []
    shown = await billing("cards", "expiring")
    assert shown.exit_code == 0 and sub_id in shown.stdout and expiring["id"] in shown.stdout

    # Removing the card a live subscription charges: refused in the API's words until another card takes its place.
    line = same_refusal(await billing("cards", "remove", clinic.client_id, expiring["id"]), await api.delete(f"{cards_url}/{expiring['id']}"), 409, "card_id")
    assert sub_id in line
    assert [c["disabled"] for c in ok(await api.get(cards_url))["cards"]] == [False, False]
    ok(await api.post(f"/subscriptions/{sub_id}/card", json={"card_id": lasting["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex}))
    removed = (await billing("cards", "remove", clinic.client_id, expiring["id"], "--json")).json()
    assert (removed["disabled"], removed["is_default"]) == (True, False)
    again = await billing("cards", "remove", clinic.client_id, expiring["id"])  # twice: the same
    assert again.exit_code == 0 and "removed" in again.stdout
    assert cli_audit(db, expiring["id"]) == ["card.remove", "card.remove"]


async def test_each_refusal_reads_as_the_api_message(billing: Billing, api: httpx.AsyncClient, db: Engine, sandbox_server: SandboxServer) -> None:
    clinic = await build_clinic(api)
    cards_url = f"/clients/{clinic.client_id}/cards"
    card = ok(await api.post(cards_url, json=await tokenize(sandbox_server)), 201)
    spare = ok(await api.post(cards_url, json=await tokenize(sandbox_server, "5555555555554444")), 201)
    before = ok(await api.get(cards_url))

    # Unknown client or card.
    same_refusal(await billing("cards", "list", "cli_nope"), await api.get("/clients/cli_nope/cards"), 404, "client_id")
    same_refusal(await billing("cards", "default", clinic.client_id, "card_nope"), await api.post(f"{cards_url}/card_nope/default"), 404, "card_id")
    same_refusal(await billing("cards", "remove", clinic.client_id, "card_nope"), await api.delete(f"{cards_url}/card_nope"), 404, "card_id")
    same_refusal(await billing("cards", "remove", "cli_nope", card["id"]), await api.delete(f"/clients/cli_nope/cards/{card['id']}"), 404, "client_id")
    # Another client's card is unknown for this one.
    other = await build_clinic(api)
    same_refusal(
        await billing("cards", "default", other.client_id, card["id"]), await api.post(f"/clients/{other.client_id}/cards/{card['id']}/default"), 404, "card_id"
    )
    bad_input(await billing("cards", "expiring", "--before", "soon"), "--before")
    assert ok(await api.get(cards_url)) == before

    # A removed card cannot become the default: 422 naming card_id, the same words.
    ok(await api.delete(f"{cards_url}/{spare['id']}"))
    line = same_refusal(await billing("cards", "default", clinic.client_id, spare["id"]), await api.post(f"{cards_url}/{spare['id']}/default"), 422, "card_id")
    assert "disabled" in line
    assert [c["is_default"] for c in ok(await api.get(cards_url))["cards"]] == [True, False]
    assert cli_audit(db, card["id"]) == [] and cli_audit(db, spare["id"]) == []
