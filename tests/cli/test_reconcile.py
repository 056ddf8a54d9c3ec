"""`billing reconcile --date`: a day's payments and refunds in our books against the sandbox
gateway's own transaction list, both ways; each difference printed in dollars, exit 1 when they differ."""

from __future__ import annotations

import json
from typing import Any

import pendulum
from sqlalchemy import Engine, update
from sqlmodel import col
from temporalio.testing import WorkflowEnvironment

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.db import session_scope
from operations.payments import refund_deposit
from tests.cli.conftest import Billing, Run, bad_input
from tests.conftest import TASK_QUEUE
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


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
    assert (report["compared"], report["matched"], report["mismatches"], report["reconciled"]) == (3, 3, [], True)  # two sales, one refund
    shown = await billing("reconcile", "--date", today)
    assert shown.exit_code == 0 and "3 matched" in shown.stdout and "the books match the gateway" in shown.stdout
    assert (await billing("reconcile", "--date", pendulum.now("America/Chicago").add(days=3).date().isoformat(), "--json")).json()["compared"] == 0

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

    elsewhere = await billing("reconcile", "--date", today, "--location", other.location_id, "--json")
    assert elsewhere.exit_code == 1  # the stray sale is under the merchant OID both locations share
    assert [m for m in _json(elsewhere)["mismatches"] if "$40.00" in m] == []

    bad_input(await billing("reconcile", "--date", "yesterday"), "--date")
    bad_input(await billing("reconcile", "--date", today, "--location", "loc_nope"), "--location", "loc_nope")


def _json(run: Run) -> Any:
    return json.loads(run.stdout)
