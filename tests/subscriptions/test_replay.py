"""Workflow versioning safety net: histories recorded from real runs replay against today's code.

Two sources: the committed histories in `tests/histories/` (recorded from earlier code; a change
that breaks determinism for running subscriptions fails here), and fresh histories of scenarios run
now, every run of the continue-as-new chain included.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHistory
from foundation.converter import data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.subscriptions.helpers import start
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from workflows.subscription import SubscriptionWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
RECORD = os.environ.get("RECORD_HISTORIES") == "1"  # set to refresh tests/histories/ from a run


def _replayer() -> Replayer:
    return Replayer(workflows=[SubscriptionWorkflow], data_converter=data_converter)


async def _each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def all_runs(env: WorkflowEnvironment, workflow_id: str) -> list[WorkflowHistory]:
    histories = []
    async for execution in env.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        histories.append(await env.client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history())
    return histories


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    await _replayer().replay_workflow(history)


async def test_fresh_histories_of_a_declined_and_recovered_subscription_replay(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=3, auto_renew=False)
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
