"""Small chaos runs in the suite.

Without the mix: workers SIGKILLed, gateway faults, cut connections, declines, and still no double
charge, no missed or duplicated cycle, dunning as scheduled, books = gateway.

With the mix: operations at the front desk race the cycles on most subscriptions while the run's
own Temporal dev server is killed and restarted too; what holds for any correct design must hold
(money per invoice, client credit, books = gateway, nothing charged after a cancellation, retries
that end, Updates that finish, the database and the workflows agreeing), and the untouched
subscriptions still keep the exact dunning schedule.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.chaos import ChaosOptions, chaos_on
from bench.chaos_servers import owned_temporal
from bench.database import drop_database


async def test_small_chaos_run_keeps_every_invariant(database_url: str, temporal_env: WorkflowEnvironment) -> None:
    name = f"billing_chaos_{uuid.uuid4().hex[:8]}"
    # Simulated time runs fast now: the first action is always a worker kill, and enough months for
    # the rest to land while it bills (shorter calms pile faults up into minutes of retry backoff).
    options = ChaosOptions(subscriptions=8, months=3, workers=2, seed=11, calm_s=(0.4, 1.2), timeout_s=420, database=name)
    address = temporal_env.client.service_client.config.target_host
    try:
        summary = await chaos_on(database_url, address, "default", options, say=lambda message: None)
    finally:
        drop_database(database_url, name)

    print(json.dumps(summary, indent=1, default=str))  # pytest shows it when an assertion fails
    assert summary["problems"] == []
    assert summary["double_charges"] == 0
    assert summary["missed_cycles"] == 0
    assert summary["duplicated_cycles"] == 0
    assert summary["dunning_violations"] == 0
    assert summary["ledger_balanced"] and summary["reconciled_with_gateway"]
    assert summary["final_statuses"] == {"ended": 8}
    # Every cycle of the term is billed, or skipped because its subscription was suspended.
    assert summary["cycles_expected"] + summary["cycles_suspended"] == 8 * 3
    # The chaos really happened (the script is drawn from the seed; the opening gateway faults are
    # armed before the first charge, and only faults the gateway fired are counted).
    assert summary["worker_kills"] >= 1
    assert summary["faults_injected"] >= 3
    # The servers belong to the suite, not to this run: it restarts neither.
    assert set(summary["faults_skipped"]) == {"temporal_restart", "postgres_stop"}


async def test_mixed_chaos_run_keeps_what_any_design_must(database_url: str, tmp_path: Path) -> None:
    name = f"billing_chaos_{uuid.uuid4().hex[:8]}"
    options = ChaosOptions(subscriptions=10, months=2, workers=2, seed=5, timeout_s=420, database=name, mix=True)
    try:
        with owned_temporal(tmp_path / "temporal") as temporal:
            summary = await chaos_on(database_url, temporal.address, "default", options, say=lambda message: None, temporal=temporal)
    finally:
        drop_database(database_url, name)

    assert summary["ok"], summary["problems"]
    assert summary["money"]["overcharged_invoices"] == 0 and summary["money"]["negative_credit"] == 0
    assert summary["ledger_balanced"] and summary["reconciled_with_gateway"]
    assert summary["workflows"]["activities_over_20_attempts"] == 0
    assert summary["workflows"]["updates_left_running"] == 0 and summary["workflows"]["status_disagreements"] == 0
    assert summary["faults_by_kind"].get("temporal_restart", 0) >= 1
    attempted = {kind for kind, counts in summary["operations"].items() if counts["attempted"]}
    assert len(attempted) >= 4, summary["operations"]
    for counts in summary["operations"].values():
        assert counts["attempted"] == counts["succeeded"] + counts["refused"] + counts["other"] + counts["errors"]
