"""`billing plan change | retire | versions` against the real stack, beside the API they twin: the
same operation behind both, so each refusal's line is exactly the API's `message` for the same
request, and nothing changes."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.access import AuditEntry
from models.plans import PlanVersion
from tests.api.helpers import build_clinic, count, ok, refused as api_refused
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


def audit_actions(db: Engine, plan_id: str) -> list[tuple[str, str]]:
    with Session(db) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.subject_id == plan_id).order_by(AuditEntry.id))  # type: ignore[arg-type]
        return [(row.action, row.token) for row in rows]


async def test_change_list_and_retire_a_plan(billing: Billing, api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api, price_cents=4_500)
    first = (await billing("plan", "versions", clinic.plan_id, "--json")).json()
    assert [(v["version"], v["price_cents"], v["effective_until"]) for v in first["versions"]] == [(1, 4_500, None)]

    changed = (await billing("plan", "change", clinic.plan_id, "--price", "52.00", "--json")).json()
    assert (changed["version"], changed["price_cents"], changed["version_added"]) == (2, 5_200, True)
    again = (await billing("plan", "change", clinic.plan_id, "--price-cents", "5200", "--json")).json()  # the same terms: no version
    assert (again["version"], again["version_added"]) == (2, False)
    renamed = await billing("plan", "change", clinic.plan_id, "--name", "Puppy Wellness Plus")
    assert renamed.exit_code == 0 and "version 3" in renamed.stdout and "$52.00" in renamed.stdout

    plan = ok(await api.get(f"/plans/{clinic.plan_id}"))
    assert (plan["version"], plan["price_cents"], plan["name"]) == (3, 5_200, "Puppy Wellness Plus")
    listed = (await billing("plan", "versions", clinic.plan_id, "--json")).json()
    assert (listed["current_version"], listed["retired_at"]) == (3, None)
    from_api = ok(await api.get(f"/plans/{clinic.plan_id}/versions"))["versions"]
    assert [(v["version"], v["price_cents"], v["name"], v["subscriptions"]) for v in listed["versions"]] == [
        (v["version"], v["price_cents"], v["name"], v["subscriptions"]) for v in from_api
    ]
    assert [v["effective_until"] is None for v in listed["versions"]] == [False, False, True]
    table = await billing("plan", "versions", clinic.plan_id)
    assert table.exit_code == 0 and "$45.00" in table.stdout and "$52.00" in table.stdout and "now" in table.stdout

    retired = (await billing("plan", "retire", clinic.plan_id, "--json")).json()
    assert retired["live_subscriptions"] == 0 and retired["retired_at"] is not None
    assert (await billing("plan", "retire", clinic.plan_id, "--json")).json()["retired_at"] == retired["retired_at"]  # twice: the same
    assert ok(await api.get(f"/plans/{clinic.plan_id}"))["active"] is False

    actions = audit_actions(db, clinic.plan_id)
    assert [action for action, _ in actions if _.startswith("cli:")] == ["plan.change_terms"] * 3 + ["plan.retire"] * 2


async def test_each_refusal_reads_as_the_api_message(billing: Billing, api: httpx.AsyncClient, db: Engine) -> None:
    clinic = await build_clinic(api)
    path = f"/plans/{clinic.plan_id}"
    before, versions_before = ok(await api.get(path)), count(db, PlanVersion)

    # An unknown plan, for each command.
    unknown = await api.patch("/plans/plan_nope", json={"price_cents": 100})
    same_refusal(await billing("plan", "change", "plan_nope", "--price-cents", "100"), unknown, 404, "plan_id")
    same_refusal(await billing("plan", "versions", "plan_nope"), await api.get("/plans/plan_nope/versions"), 404, "plan_id")
    same_refusal(await billing("plan", "retire", "plan_nope"), await api.post("/plans/plan_nope/retire"), 404, "plan_id")

    # A price above the location's max_invoice_cents.
    line = same_refusal(
        await billing("plan", "change", clinic.plan_id, "--price-cents", "6000000"), await api.patch(path, json={"price_cents": 6_000_000}), 422, "price_cents"
    )
    assert "max_invoice_cents" in line
    assert ok(await api.get(path)) == before and count(db, PlanVersion) == versions_before

    # Input the command cannot take: exit 2, nothing sent.
    bad_input(await billing("plan", "change", clinic.plan_id), "--price")
    bad_input(await billing("plan", "change", clinic.plan_id, "--price", "fifty"), "--price")
    bad_input(await billing("plan", "change", clinic.plan_id, "--price", "52.00", "--price-cents", "5200"), "--price")
    bad_input(await billing("plan", "change", clinic.plan_id, "--price-cents", "0"), "--price")
    bad_input(await billing("plan", "change", clinic.plan_id, "--name", "  "), "--name")
    assert ok(await api.get(path)) == before and count(db, PlanVersion) == versions_before

    # Retired (here through the API): a change is a 409 naming plan_id, in the same words on both.
    ok(await api.post(f"{path}/retire"))
    line = same_refusal(await billing("plan", "change", clinic.plan_id, "--price", "49.00"), await api.patch(path, json={"price_cents": 4_900}), 409, "plan_id")
    assert "retired" in line
    assert count(db, PlanVersion) == versions_before
    assert not [action for action, token in audit_actions(db, clinic.plan_id) if token.startswith("cli:")]
