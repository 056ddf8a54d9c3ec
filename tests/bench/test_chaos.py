"""A small chaos run in the suite: workers SIGKILLed, gateway faults, cut connections, declines,
and still no double charge, no missed or duplicated cycle, dunning as scheduled, books = gateway."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from bench.chaos import ChaosOptions, chaos_on
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

    assert summary["problems"] == []
    assert summary["double_charges"] == 0
    assert summary["missed_cycles"] == 0
    assert summary["duplicated_cycles"] == 0
    assert summary["dunning_violations"] == 0
    assert summary["ledger_balanced"] and summary["reconciled_with_gateway"]
    assert summary["final_statuses"] == {"ended": 8}
    assert summary["cycles_expected"] >= 8 * 3
    # The chaos really happened (the script is drawn from the seed; the opening gateway faults are
    # armed before the first charge, and only faults the gateway fired are counted).
    assert summary["worker_kills"] >= 1
    assert summary["faults_injected"] >= 3
