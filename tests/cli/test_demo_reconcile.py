"""`billing --demo reconcile` after the demo has ended: its sandbox ran memory-only in its own process
and took the gateway's records with it, so the demo keeps that sandbox's state in the data folder and
the command serves it for its own duration, whatever sandbox the CLI is configured with."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from cli.operator_stack import use_demo_books
from demo.leftovers import terminate_running
from demo.play import DemoOptions, DemoRun
from demo.record import DEMO_SANDBOX_FILE, RECORD_FILE, DemoRecord, read_record, write_record
from demo.sandbox_process import sandbox_process
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.sandbox.server import SandboxServer
from tests.cli.conftest import Run, invoke, refused


async def billing(environment: dict[str, str], *args: str) -> Run:
    try:
        return await asyncio.to_thread(invoke, environment, "--demo", *args)
    finally:
        use_demo_books(False)


async def test_demo_reconcile_matches_after_the_demo_sandbox_stopped(
    db: Engine, database_url: str, temporal_env: WorkflowEnvironment, cli_environment: dict[str, str], tmp_path: Path
) -> None:
    played_on = date.today()
    client = temporal_env.client
    options = DemoOptions(clients=5, months=2, seed=7, workers=1)  # one worker: the one in this process
    with sandbox_process(state_file=tmp_path / DEMO_SANDBOX_FILE) as sandbox:  # the demo's own sandbox, as `billing demo` runs it
        run = DemoRun(options, client, database_url, sandbox, temporal_address="", namespace=client.namespace)
        database = make_url(database_url).database
        assert database
        write_record(tmp_path, DemoRecord(database=database, task_queue=run.task_queue, namespace=client.namespace, sandbox_state=DEMO_SANDBOX_FILE))
        try:
            summary = await run.play(lambda message: None)
        finally:
            with contextlib.suppress(Exception):
                await terminate_running(client, run.task_queue)
    assert summary["reconciled_with_gateway"], summary
    assert (tmp_path / DEMO_SANDBOX_FILE).exists()

    # The CLI's own sandbox is another, empty one: it never saw the demo's sales.
    with SandboxServer({SANDBOX_OID: SANDBOX_TOKEN}, log_level="critical") as elsewhere:
        where = urlsplit(elsewhere.root_url)
        env = {**cli_environment, "BILLING_DATA_DIR": str(tmp_path), "BILLING_SANDBOX_HOST": where.hostname or "", "BILLING_SANDBOX_PORT": str(where.port)}
        period = ("--from", (played_on - timedelta(days=1)).isoformat(), "--to", (played_on + timedelta(days=90)).isoformat())
        answer = await billing(env, "reconcile", *period, "--json")
        assert answer.exit_code == 0, (answer.stdout, answer.stderr)
        result = answer.json()
        assert result["checked"] > 0 and result["differences"] == [], result
        assert result["reconciled"] is True

        # Without --demo nothing changes: the configured (empty) sandbox knows none of our movements.
        plain = {**env, "DATABASE_URL": database_url}
        assert (await asyncio.to_thread(invoke, plain, "reconcile", *period, "--json")).exit_code == 1

        # No kept state, or a record from before demos kept it: one line naming the file.
        (tmp_path / DEMO_SANDBOX_FILE).unlink()
        refused(await billing(env, "reconcile", *period), str(tmp_path / DEMO_SANDBOX_FILE))
        raw = json.loads((tmp_path / RECORD_FILE).read_text())
        del raw["sandbox_state"]
        (tmp_path / RECORD_FILE).write_text(json.dumps(raw))
        old = read_record(tmp_path)
        assert old is not None and old.sandbox_state is None
        refused(await billing(env, "reconcile", *period), str(tmp_path / DEMO_SANDBOX_FILE))
