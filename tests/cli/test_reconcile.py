"""`billing reconcile --date` / `--from --to`: a period's payments and refunds in our books, each
looked up at the sandbox gateway, plus the gateway's own list; each difference printed in dollars,
exit 1 when they differ; the same figures `GET /finance/reconciliation` answers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pendulum
import pytest
from sqlalchemy import Engine, update
from sqlmodel import col
from temporalio.testing import WorkflowEnvironment

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.client import GravityClient
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.db import session_scope
from operations.finance_scope import MAX_PERIOD_DAYS
from operations.payments import refund_deposit
from operations.period_reconciliation import reconcile_period
from stack.gravity_config import gateway_directory
from tests.api.helpers import ok, refused as api_refused
from tests.cli import served_api
from tests.cli.conftest import Billing, Run, bad_input
from tests.conftest import TASK_QUEUE
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

api_app = served_api.api_app
api_server = served_api.api_server
api = served_api.api


async def test_reconcile_matches_then_itemises_each_difference(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic, other = make_clinic(db), make_clinic(db)
    card, card_ref = await save_card(db, sandbox_server, clinic)
    deposit = (await billing("deposit", clinic.client_id, "--card", card, "--amount", "50.00", "--json")).json()
    assert deposit["status"] == "approved"
    paid = (await billing("deposit", clinic.client_id, "--card", card, "--amount", "25.00", "--json")).json()
    given_back = await refund_deposit(temporal_env.client, db, deposit_id=paid["deposit_id"], request_id="give-back", task_queue=TASK_QUEUE)
    assert given_back.result is not None and given_back.result.status == "done", given_back
    today = pendulum.now("America/Chicago").date().isoformat()

    matched = await billing("reconcile", "--date", today, "--json")
    assert matched.exit_code == 0, matched
    report = matched.json()
    assert (report["checked"], report["matched"], report["differences"], report["reconciled"]) == (3, 3, [], True)  # two sales, one refund
    assert (report["gateway_listed"], report["double_charges"]) == (True, 0)
    shown = await billing("reconcile", "--date", today)
    assert shown.exit_code == 0 and "3 matched" in shown.stdout and "the books match the gateway" in shown.stdout
    assert (await billing("reconcile", "--date", pendulum.now("America/Chicago").add(days=3).date().isoformat(), "--json")).json()["checked"] == 0

    # our books say $40.00 where the gateway kept $50.00; and the gateway has a sale our books never recorded
    with session_scope(db) as session:
        session.execute(update(Payment).where(col(Payment.id) == deposit["payment_id"]).values(approved_cents=4_000))
    async with GravityClient(sandbox_server.base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        stray = await gravity.charge_saved_card(card_ref=card_ref, amount_cents=1_200, external_id="stray-sale-1")
    assert stray.approved
    differs = await billing("reconcile", "--date", today)
    assert differs.exit_code == 1, differs
    lines = [line for line in differs.stdout.splitlines() if line.startswith("differs")]
    assert len(lines) == 2, differs.stdout
    assert any(": ours $40.00, gateway $50.00" in line for line in lines)
    assert any("stray-sale-1: ours none, gateway $12.00" in line for line in lines)
    assert "4 transaction(s) compared, 2 matched" in differs.stdout

    # the stray sale is under the merchant OID both locations share: nothing says whose it is, so only
    # the all-locations answer reports it, and neither location sees the other's sales or strays
    elsewhere = await billing("reconcile", "--date", today, "--location", other.location_id, "--json")
    assert elsewhere.exit_code == 0, elsewhere
    assert (_json(elsewhere)["checked"], _json(elsewhere)["differences"], _json(elsewhere)["double_charges"]) == (0, [], 0)
    own = _json(await billing("reconcile", "--date", today, "--location", clinic.location_id, "--json"))
    assert [m["ours_cents"] for m in own["differences"]] == [4_000] and "stray-sale-1" not in json.dumps(own)

    bad_input(await billing("reconcile", "--date", "yesterday"), "--date")
    bad_input(await billing("reconcile", "--date", today, "--location", "loc_nope"), "--location", "loc_nope")


async def test_the_cli_and_the_api_answer_a_period_with_the_same_figures(
    billing: Billing, api: httpx.AsyncClient, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, cli_environment: dict[str, str]
) -> None:
    clinic = make_clinic(db)
    card, card_ref = await save_card(db, sandbox_server, clinic)
    early = (await billing("deposit", clinic.client_id, "--card", card, "--amount", "30.00", "--json")).json()
    (await billing("deposit", clinic.client_id, "--card", card, "--amount", "20.00", "--json")).json()
    today = pendulum.now("America/Chicago").date()
    with session_scope(db) as session:  # the books say the first deposit was taken (and settled) two days ago
        two_days_ago = pendulum.now("UTC").subtract(days=2)
        session.execute(
            update(Payment).where(col(Payment.id) == early["payment_id"]).values(created_at=two_days_ago, updated_at=two_days_ago, settled_at=two_days_ago)
        )
    async with GravityClient(sandbox_server.base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        assert (await gravity.charge_saved_card(card_ref=card_ref, amount_cents=700, external_id="stray-sale-2")).approved
    period = {"from": today.subtract(days=2).isoformat(), "to": today.isoformat()}

    shown = await billing("reconcile", "--from", period["from"], "--to", period["to"], "--json")
    assert shown.exit_code == 1, shown  # the stray sale
    cli = _json(shown)
    assert cli == ok(await api.get("/finance/reconciliation", params=period))
    gateways = gateway_directory(_settings(cli_environment))
    try:
        direct = await reconcile_period(db, gateways, today.subtract(days=2), today)
    finally:
        await gateways.aclose()
    assert cli == json.loads(json.dumps(direct.to_json(), default=str))  # the one function both call
    assert (cli["checked"], cli["matched"], cli["reconciled"]) == (3, 2, False)
    assert [(m["external_transaction_id"], m["gateway_cents"], m["status"]) for m in cli["differences"]] == [("stray-sale-2", 700, "not_in_books")]
    totals = {t["kind"]: (t["ours_cents"], t["gateway_cents"], t["matched"]) for t in cli["totals"]}
    assert totals["sale"] == (5_000, 5_700, False) and totals["refund"] == (0, 0, True)
    assert sorted(m["booked_on"] for m in cli["movements"] if m["ours_cents"]) == [period["from"], period["to"]]
    one_day = await billing("reconcile", "--date", period["to"], "--json", "--location", clinic.location_id)
    assert _json(one_day)["checked"] == 2 and _json(one_day) == ok(
        await api.get("/finance/reconciliation", params={"date": period["to"], "location_id": clinic.location_id})
    )


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to", "before from"),
        ({"from": "2026-01-01", "to": (pendulum.date(2026, 1, 1) + timedelta(days=MAX_PERIOD_DAYS)).isoformat()}, "to", f"at most {MAX_PERIOD_DAYS}"),
        ({"from": "2026-03-01"}, "to", "required"),
        ({"to": "2026-03-01"}, "from", "required"),
        ({"date": "2026-03-01", "from": "2026-03-01", "to": "2026-03-02"}, "date", "not both"),
        ({"from": "0900-01-01", "to": "0900-01-02"}, "from", "years"),
    ],
)
async def test_a_bad_period_is_refused_by_both_naming_the_field(
    billing: Billing, api: httpx.AsyncClient, db: Engine, params: dict[str, str], field: str, reason: str
) -> None:
    body = api_refused(await api.get("/finance/reconciliation", params=params), 422, field)
    (said,) = [f["reason"] for f in body["fields"] if f["field"] == field]
    assert reason in said, body
    line = bad_input(await billing("reconcile", *[arg for name, value in params.items() for arg in (f"--{name}", value)]), f"--{field}")
    assert line == f"--{field}: {said}"


async def test_a_malformed_day_is_one_line_naming_the_option(billing: Billing, api: httpx.AsyncClient, db: Engine) -> None:
    bad_input(await billing("reconcile", "--from", "2026-02-30", "--to", "2026-03-01"), "--from", "2026-02-30")
    bad_input(await billing("reconcile", "--from", "2026-02-01", "--to", "march"), "--to", "march")
    api_refused(await api.get("/finance/reconciliation", params={"from": "2026-02-30", "to": "2026-03-01"}), 422, "from")
    api_refused(await api.get("/finance/reconciliation", params={"from": "2026-02-01", "to": "march"}), 422, "to")


async def test_a_slow_gateway_gets_one_line_of_progress(billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    (await billing("deposit", clinic.client_id, "--card", card, "--amount", "15.00", "--json")).json()
    today = pendulum.now("America/Chicago").date().isoformat()
    quick = await billing("reconcile", "--date", today)
    assert quick.exit_code == 0 and "looking" not in quick.stderr, quick
    sandbox.inject_fault("lookup", "slow", delay_s=2.0)
    slow = await billing("reconcile", "--date", today)
    assert slow.exit_code == 0, slow
    assert [line for line in slow.stderr.splitlines() if line.strip()] == ["looking 1 movement(s) up at the gateway, one by one (0 done) ..."]


def _settings(environment: dict[str, str]) -> Settings:
    """The settings the CLI reads from `environment` (its sandbox among them)."""
    return Settings(sandbox_host=environment["BILLING_SANDBOX_HOST"], sandbox_port=int(environment["BILLING_SANDBOX_PORT"]), gravity_base_url=None)


def _json(run: Run) -> Any:
    return json.loads(run.stdout)
