"""`bench/charge_cost.py`: the charge activity alone, timed on real PostgreSQL and the sandbox over HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from bench.charge_cost import WARMUP, measure
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.payments.test_charge_statements import FIRST_ATTEMPT_STATEMENTS


async def test_the_charge_cost_run_charges_each_member_once_and_reports_per_charge(
    db: Engine, database_url: str, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    report: dict[str, Any] = await measure(database_url, sandbox_server.base_url, 6, 3)

    sales = [t for t in sandbox.transactions() if t["transaction_type"] == "CreditSale"]
    assert len(sales) == 6 + WARMUP and len({t["external_transaction_id"] for t in sales}) == len(sales)
    assert (report["n"], report["concurrency"]) == (6, 3)
    assert 0 < report["statements_per_charge"] <= FIRST_ATTEMPT_STATEMENTS
    assert report["round_trips_per_charge"] > report["statements_per_charge"]  # commits and checkouts too
    assert report["cpu_ms_per_charge"] > 0 and report["wall_ms_per_charge"] > 0
