"""Operator commands use the configured stack or the embedded one `billing up` runs; they never start
one of their own, and without either they say what to do in one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from cli.operator_stack import embedded_database_url
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.subscriptions import Subscription
from stack.processes import ProcessRef, write_json
from stack.temporal import STATE_FILE
from tests.cli.conftest import Billing, eventually, invoke, temporal_address
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

BILLING = Path(sys.executable).parent / "billing"


def approved(engine: Engine, subscription_id: str) -> bool:
    with Session(engine) as session:
        query = select(Payment).where(Payment.subscription_id == subscription_id, Payment.status == "approved")
        return session.exec(query).first() is not None


def test_without_a_stack_the_command_says_start_it_first_and_starts_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS") and not k.startswith("BILLING_")}
    env["BILLING_DATA_DIR"] = str(tmp_path / "data")
    run = subprocess.run([str(BILLING), "show", "sub_x"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run
    assert run.stderr.splitlines()[0] == "start the stack first: billing up"
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "data" / "postgres").exists() and not (tmp_path / "data" / STATE_FILE).exists()


async def test_commands_find_the_temporal_server_billing_up_runs(
    billing: Billing, db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, cli_environment: dict[str, str], tmp_path: Path
) -> None:
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    sub_id = (
        await billing(
            "enroll",
            "--client",
            clinic.client_id,
            "--pet",
            clinic.pet_id,
            "--plan",
            clinic.plan_id,
            "--card",
            card,
            "--start-date",
            (date.today() - timedelta(days=1)).isoformat(),
            "--json",
        )
    ).json()["subscription_id"]
    await eventually(lambda: approved(db, sub_id))  # the first cycle is charged: the workflow sleeps

    # no TEMPORAL_ADDRESS: the address comes from the state file of the data folder's dev server
    data_dir = tmp_path / "stack"
    data_dir.mkdir()
    environment = {**cli_environment, "TEMPORAL_ADDRESS": "", "BILLING_DATA_DIR": str(data_dir)}
    write_json(
        data_dir / STATE_FILE,
        {
            "server": ProcessRef.me().to_dict(),
            "owner": ProcessRef.me().to_dict(),
            "address": temporal_address(temporal_env),
            "ui_url": "",
            "namespace": "default",
        },
    )
    shown = await asyncio.to_thread(invoke, environment, "show", sub_id, "--json")
    assert shown.json()["subscription"]["id"] == sub_id

    # the recorded server is gone: one line, exit 1
    write_json(data_dir / STATE_FILE, {"server": {"pid": 999_999_999, "create_time": 1.0}, "address": temporal_address(temporal_env)})
    gone = await asyncio.to_thread(invoke, environment, "show", sub_id, "--json")
    assert gone.exit_code == 1 and gone.stderr.splitlines()[0] == "start the stack first: billing up"
    # a command that needs only the database still works
    report = await asyncio.to_thread(invoke, environment, "report", "--from", "2026-01-01", "--to", "2026-01-31", "--json")
    assert report.exit_code == 0, report


async def test_unreachable_temporal_and_an_unmigrated_database_are_one_line_each(
    billing: Billing, db: Engine, cli_environment: dict[str, str], database_url: str
) -> None:
    clinic = make_clinic(db)
    args = ("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", clinic.plan_id)
    run = await asyncio.to_thread(invoke, {**cli_environment, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, *args)
    assert run.exit_code == 1 and run.stderr.splitlines()[0] == "cannot reach Temporal at 127.0.0.1:1", run
    maintenance = make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    run = await asyncio.to_thread(invoke, {**cli_environment, "DATABASE_URL": maintenance}, "show", "sub_x")
    assert run.exit_code == 1 and run.stderr.splitlines()[0].endswith("has no billing tables: run billing migrate"), run
    with Session(db) as session:
        assert session.exec(select(func.count()).select_from(Subscription)).one() == 0


def test_the_embedded_database_url_is_found_from_the_running_server(database_url: str) -> None:
    """When the tests run on the embedded PostgreSQL (no DATABASE_URL), its URL is rebuilt from its folder."""
    host = make_url(database_url).query.get("host")
    if not host or Path(str(host)).name != "postgres":
        pytest.skip("the tests run on a configured PostgreSQL server: nothing embedded to find")
    url = embedded_database_url(Path(str(host)).parent)
    assert url is not None
    assert make_url(url).query.get("host") == host and make_url(url).database == "billing"
    assert embedded_database_url(Path("/nonexistent-billing-data")) is None
