"""Workflow versioning safety net: histories recorded from real runs replay against today's code.

Two sources: the committed histories in `tests/histories/` (recorded from earlier code; a change
that breaks determinism for running workflows fails here), and fresh histories of scenarios run
now, every run of the continue-as-new chain included. Every replay registers every workflow the
worker runs (`activities.registry.WORKFLOWS`).
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.registry import WORKFLOWS
from foundation.converter import data_converter
from foundation.settings import SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import session_scope
from models.plans import HealthPlan
from operations import subscriptions as commands
from operations.history.markers import PATCH_MARKER
from tests.payments import test_deposits, test_janitor, test_paths_meet, test_refunds
from tests.payments.conftest import Receiver, clinic, gateways, postback_receiver, postbacks, ready  # noqa: F401 - the counter scenarios' fixtures
from tests.subscriptions import test_commands, test_dunning, test_plan_versions, test_term
from tests.subscriptions.helpers import local_today, start, start_held, subscription_id_of, until_view, worker_with_token
from tests.subscriptions.test_incidents import WRONG_TOKEN, enroll_due_yesterday, incident
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from workflows.subscription import PATCH_NAMED_INVOICES

HISTORIES = Path(__file__).parent.parent / "histories"
RECORD = os.environ.get("RECORD_HISTORIES") == "1"  # set to refresh tests/histories/ from a run


def _replayer() -> Replayer:
    """A replayer that knows every workflow the worker runs, with the worker's data converter."""
    return Replayer(workflows=list(WORKFLOWS), data_converter=data_converter)


async def _each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def all_runs(env: WorkflowEnvironment, workflow_id: str) -> list[WorkflowHistory]:
    histories = []
    async for execution in env.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        histories.append(await env.client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history())
    return histories


def _patches(history: WorkflowHistory) -> list[str]:
    """The patch ids whose markers a run recorded."""
    markers = (e.marker_recorded_event_attributes for e in history.events if e.HasField("marker_recorded_event_attributes"))
    return [json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in markers if m.marker_name == PATCH_MARKER]


def _committed(path: Path) -> WorkflowHistory:
    """A recorded history; a long one is kept gzipped (`*.json.gz`)."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return WorkflowHistory.from_json(path.name.split(".")[0], json.loads(text))


@pytest.mark.parametrize("path", sorted([*HISTORIES.glob("*.json"), *HISTORIES.glob("*.json.gz")]), ids=lambda p: p.name.split(".")[0])
async def test_committed_history_replays(path: Path) -> None:
    await _replayer().replay_workflow(_committed(path))


async def test_fresh_histories_of_a_declined_and_recovered_subscription_replay(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=3, auto_renew=False)  # noqa: F811 - a clinic of its own, not the imported fixture
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=2)
    handle = await start(temporal_env, db, clinic, date(2027, 5, 20))
    assert await handle.result() == "ended"

    histories = await all_runs(temporal_env, handle.id)
    assert len(histories) == 1  # three monthly cycles and the term end fit in one run (a run spans a year)
    results = await _replayer().replay_workflows(_each(histories), raise_on_replay_failure=False)
    assert dict(results.replay_failures) == {}
    if RECORD:
        # Keep the older recordings: `declined_recovered_run*.json` continued as new after every
        # cycle, `declined_recovered_yearly_runs_run*.json` charged through an activity task.
        HISTORIES.mkdir(exist_ok=True)
        for number, history in enumerate(histories):
            (HISTORIES / f"declined_recovered_local_charge_run{number}.json").write_text(history.to_json())


async def test_fresh_history_of_a_plan_change_replays(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """A plan change mid-period (a proration invoice, the PlanId attribute following the plan),
    then the next cycle at the new price."""
    clinic = make_clinic(db, price_cents=3_000)  # noqa: F811 - a clinic of its own, not the imported fixture
    with session_scope(db) as session:
        session.add(HealthPlan(id=f"{clinic.plan_id}_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today("America/Chicago") - timedelta(days=1))  # make_clinic's zone
    await temporal_env.fast_forward(handle, timedelta(days=10))
    assert (await commands.change_plan(temporal_env.client, subscription_id_of(handle), f"{clinic.plan_id}_premium")).accepted
    await temporal_env.fast_forward(handle, timedelta(days=35))  # past the next cycle, at the new price
    await commands.cancel(temporal_env.client, subscription_id_of(handle), mode="now")
    assert await handle.result() == "cancelled"

    histories = await all_runs(temporal_env, handle.id)
    results = await _replayer().replay_workflows(_each(histories), raise_on_replay_failure=False)
    assert dict(results.replay_failures) == {}
    if RECORD:
        for number, history in enumerate(histories):
            (HISTORIES / f"plan_change_run{number}.json").write_text(history.to_json())


async def test_fresh_history_of_a_refused_charge_paid_now_replays(db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment) -> None:
    """The first charge refused (an incident, tracked by its real invoice under PATCH_NAMED_INVOICES),
    then paid by pay-now once the credentials are mended. `incident_paid_now_loop_run0.json.gz`
    is the same scenario recorded before the patch, retrying the nameless entry at once, forever."""
    clinic = make_clinic(db, term_months=2)  # noqa: F811 - a clinic of its own, not the imported fixture
    await save_card(db, sandbox_server, clinic)
    queue = "replay-refused-then-paid-now"
    async with worker_with_token(temporal_env, db, sandbox_server, queue, WRONG_TOKEN):
        handle, sub_id = await enroll_due_yesterday(temporal_env, db, clinic, queue)
        await incident(temporal_env, sub_id)
    async with worker_with_token(temporal_env, db, sandbox_server, queue, SANDBOX_TOKEN):
        await commands.pay_now(temporal_env.client, sub_id)
        assert (await until_view(temporal_env, sub_id, lambda v: v.status == "active", seconds=30)).status == "active"
        await commands.cancel(temporal_env.client, sub_id, mode="now")
        assert await handle.result() == "cancelled"

    histories = await all_runs(temporal_env, handle.id)
    assert PATCH_NAMED_INVOICES in _patches(histories[0])
    results = await _replayer().replay_workflows(_each(histories), raise_on_replay_failure=False)
    assert dict(results.replay_failures) == {}
    if RECORD:
        for number, history in enumerate(histories):
            (HISTORIES / f"incident_paid_now_run{number}.json").write_text(history.to_json())


# Scenarios whose every workflow (subscription, terminal payment, saga, refund, deposit, janitor,
# broadcast) is replayed, and recorded into tests/histories/ with RECORD_HISTORIES=1.
SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "pause_resume_pause": test_commands.test_pause_resume_and_pause_again_in_one_cycle_announce_each_command,
    "pause_skips_cycles": test_commands.test_pause_skips_cycles_and_resume_bills_the_next_one,
    "suspend_reactivate": test_dunning.test_exhausted_dunning_suspends_and_payment_reactivates,
    "suspend_without_card": test_dunning.test_a_subscription_without_a_usable_card_is_suspended_after_two_cycles_and_a_new_card_reactivates_it,
    "cancel_now": test_commands.test_cancel_mid_period_refunds_the_unused_part,
    "cancel_term_end": test_term.test_term_renews_by_itself_and_cancel_at_term_end_stops_after_the_next_term,
    "plan_versions_retired": test_plan_versions.test_a_price_change_waits_for_the_renewal_and_a_retired_plan_ends_at_term_end,
    "card_change": test_dunning.test_hard_decline_waits_for_a_new_card_and_the_update_retries_at_once,
    "late_card_update": test_dunning.test_a_soft_decline_after_a_late_card_update_waits_for_the_next_retry_day,
    "proration_dunned": test_commands.test_a_declined_proration_follows_the_dunning_schedule,
    "next_run_recovers": test_dunning.test_a_run_that_starts_past_due_with_nothing_open_recovers,
    "charging_enabled": test_commands.test_location_setting_off_invoices_without_charging_and_on_charges_overdue,
    "terminal_pays_subscription": test_paths_meet.test_the_subscription_waits_while_the_counter_collects_and_recovers_when_it_pays,
    "invoice_cancellation": test_deposits.test_deposit_pays_the_next_subscription_invoice_then_comes_back_when_it_is_cancelled,
    "refund": test_refunds.test_full_refund_after_settlement_is_a_refund,
    "card_deposit": test_paths_meet.test_a_deposit_is_refunded_only_down_to_its_unused_credit,
    "money_janitor": test_janitor.test_the_schedules_are_created_once_and_the_janitor_runs_as_a_workflow,
}


async def _workflow_ids(env: WorkflowEnvironment) -> set[str]:
    return {execution.id async for execution in env.client.list_workflows("")}


async def _new_workflow_ids(env: WorkflowEnvironment, before: set[str]) -> list[str]:
    """The workflows started since `before`, once visibility lists them all (it may lag a little)."""
    previous: set[str] = set()
    for _ in range(20):
        now = await _workflow_ids(env) - before
        if now and now == previous:
            return sorted(now)
        previous = now
        await asyncio.sleep(0.2)
    return sorted(previous)


def _workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_fresh_histories_of_a_scenario_replay(
    name: str,
    request: pytest.FixtureRequest,
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    billing_worker: Worker,
    gateways: GatewayDirectory,  # noqa: F811 - the fixture, imported above
    ready: Receiver,  # noqa: F811 - the fixture, imported above
) -> None:
    scenario = SCENARIOS[name]
    # The asynchronous fixtures are asked for above (they cannot be made from inside the running
    # loop); the synchronous rest (the clinic) by name.
    given = {
        "db": db,
        "sandbox": sandbox,
        "sandbox_server": sandbox_server,
        "temporal_env": temporal_env,
        "billing_worker": billing_worker,
        "gateways": gateways,
        "ready": ready,
    }
    fixtures = {
        parameter: given[parameter] if parameter in given else request.getfixturevalue(parameter) for parameter in inspect.signature(scenario).parameters
    }
    before = await _workflow_ids(temporal_env)
    await scenario(**fixtures)

    histories = [history for workflow_id in await _new_workflow_ids(temporal_env, before) for history in await all_runs(temporal_env, workflow_id)]
    assert histories
    results = await _replayer().replay_workflows(_each(histories), raise_on_replay_failure=False)
    assert dict(results.replay_failures) == {}
    if RECORD:
        for number, history in enumerate(sorted(histories, key=lambda h: (_workflow_type(h), h.events[0].event_time.ToDatetime()))):
            _write(HISTORIES / f"{name}_{_workflow_type(history).lower()}_{number}.json", history)


def _write(path: Path, history: WorkflowHistory) -> None:
    """Keep a recorded history; a long one gzipped (`_committed` reads both)."""
    text = history.to_json()
    if len(text) > 100_000:
        path.with_suffix(".json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)
