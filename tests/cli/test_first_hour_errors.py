"""What a newcomer runs into first says what is wrong in one line: a bad address or URL names the
variable that was set, a card the sandbox forgot is a refusal, and `billing show` says it is waiting."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations.enrollment import EnrollRequest, enroll
from tests.cli.conftest import Billing, bad_input, invoke, refused
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


def test_a_bad_temporal_address_names_the_variable_that_was_set(cli_environment: dict[str, str]) -> None:
    bare = {**cli_environment, "TEMPORAL_ADDRESS": "localhost"}
    message = refused(invoke(bare, "show", "sub_x"), "TEMPORAL_ADDRESS", "host:port")
    assert "BILLING_TEMPORAL_ADDRESS" not in message and len(message.splitlines()) == 1
    prefixed = {**cli_environment, "TEMPORAL_ADDRESS": "", "BILLING_TEMPORAL_ADDRESS": "localhost"}
    refused(invoke(prefixed, "show", "sub_x"), "BILLING_TEMPORAL_ADDRESS", "host:port")


def test_a_database_url_that_is_not_postgresql_is_one_line(cli_environment: dict[str, str]) -> None:
    message = refused(invoke({**cli_environment, "DATABASE_URL": "mysql://x"}, "report", "--from", "2026-01-01", "--to", "2026-01-31"), "DATABASE_URL")
    assert "BILLING_DATABASE_URL" not in message and len(message.splitlines()) == 1


def test_a_demo_too_short_for_its_stories_is_one_line_naming_months(cli_environment: dict[str, str]) -> None:
    # One month used to play until the exhausted-dunning story's new card met a finished subscription (a traceback).
    bad_input(invoke(cli_environment, "demo", "--months", "1"), "--months")


async def test_a_deposit_on_a_card_the_sandbox_forgot_is_a_refusal(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    sandbox.reset()  # a sandbox restarted without its state file forgets every card
    run = await billing("deposit", clinic.client_id, "--card", card, "--amount-cents", "5000")
    said = (run.stdout + run.stderr).strip()
    assert run.exit_code == 1 and "Traceback" not in said and len(said.splitlines()) == 1, run
    assert "not found" in said


async def test_show_says_it_is_waiting_for_a_workflow_no_worker_serves(
    billing: Billing, db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date.today(), card_id=card)
    enrollment = await enroll(temporal_env.client, db, request, task_queue="nobody-serves-this")
    started = asyncio.get_running_loop().time()
    run = await billing("show", enrollment.subscription_id)
    assert run.exit_code == 0, run
    assert "waiting" in run.stderr and "worker" in run.stderr, run.stderr
    assert "did not answer" in run.stderr and "no worker polls task queue nobody-serves-this" in run.stderr, run.stderr
    assert enrollment.subscription_id in run.stdout
    assert asyncio.get_running_loop().time() - started < 8  # a short wait: nothing serves the run's task queue
    await temporal_env.client.get_workflow_handle(enrollment.workflow_id).terminate("test over")


async def test_show_answers_at_once_from_a_closed_run(billing: Billing, db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment) -> None:
    """The demo leaves its workflows closed and no worker behind: their state needs no worker to read."""
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date.today(), card_id=card)
    enrollment = await enroll(temporal_env.client, db, request, task_queue="nobody-serves-this")
    await temporal_env.client.get_workflow_handle(enrollment.workflow_id).terminate("demo over")
    started = asyncio.get_running_loop().time()
    run = await billing("show", enrollment.subscription_id)
    assert run.exit_code == 0, run
    assert "waiting" not in run.stderr and "terminated" in run.stdout, run
    assert asyncio.get_running_loop().time() - started < 3
    shown = (await billing("show", enrollment.subscription_id, "--json")).json()
    assert shown["workflow"] is None and shown["run"]["status"] == "terminated" and shown["run"]["closed_at"]
