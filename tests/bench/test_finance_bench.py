"""`billing bench --finance` at a tiny scale: the seeded books balance and every route answers.

Timings are never asserted (the machine is shared); what is checked is what the figures rest on:
a group seeded with every kind of row, books that balance, ids the engine itself would derive, and
200 from every probed route the app serves, first pages and pages reached by cursor alike.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.routes import finance, lists
from bench import finance_ids
from bench.finance_timing import PROBES, format_report, served_routes
from bench.run_finance import FINANCE_DATABASE, database_name, finance_on
from foundation import ids
from foundation.settings import Settings

EXISTING = ("GET /subscriptions/{id}", "GET /clients/{id}/invoices", "GET /events")


def test_every_list_search_timeline_and_finance_route_is_timed() -> None:
    app = FastAPI()
    app.include_router(lists.router)
    app.include_router(finance.router)
    assert served_routes(app) - {probe.template for probe in PROBES} == set()
    timed = {(probe.template, probe.build.__qualname__) for probe in PROBES}
    assert {"/finance/journal", "/finance/report"} <= {template for template, _ in timed}
    assert len(PROBES) == len({probe.route for probe in PROBES})


def test_the_bench_database_is_named_by_option_env_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLING_BENCH_FINANCE_DATABASE", raising=False)
    assert database_name() == FINANCE_DATABASE
    monkeypatch.setenv("BILLING_BENCH_FINANCE_DATABASE", "billing_bench_finance_scale")
    assert database_name() == "billing_bench_finance_scale"
    assert database_name("mine_2") == "mine_2"
    with pytest.raises(ValueError, match="--database"):
        database_name('x"; DROP DATABASE postgres; --')


def test_the_seed_derives_the_engines_own_ids() -> None:
    key = ids.charge_key("sub_0123456789abcdef0123", date(2025, 1, 31), 2)
    external = ids.external_id(key)
    assert finance_ids.external_id(key) == external
    assert finance_ids.row_id("pay_", external) == ids.payment_id_for(external)
    assert finance_ids.row_id("ref_", external) == ids.refund_id_for(external)
    assert finance_ids.row_id("dep_", external) == ids.deposit_id_for_payment(external)
    assert finance_ids.event_id_for("invoice.issued:inv_1") == ids.event_id_for("invoice.issued:inv_1")
    assert finance_ids.subscription_id_for("enroll:a:b:c:2025-01-31") == ids.subscription_id_for("enroll:a:b:c:2025-01-31")
    assert finance_ids.invoice_id_for_cycle("sub_a", date(2024, 2, 29)) == ids.invoice_id_for_cycle("sub_a", date(2024, 2, 29))


async def test_a_tiny_finance_bench_balances_its_books_and_every_route_answers(database_url: str, temporal_env: WorkflowEnvironment) -> None:
    settings = Settings.model_construct(api_token=SecretStr("finance-bench-test-token"), events_url=None, events_secret=None)
    name = f"billing_finance_{uuid.uuid4().hex[:8]}"
    report = await asyncio.to_thread(finance_on, database_url, temporal_env.client, settings, 300, requests=5, database=name, say=lambda message: None)

    rows = report["seed"]["rows"]
    assert rows["subscription"] == 300 and rows["client"] == 180
    assert all(count > 0 for count in rows.values()), rows
    assert rows["ledger_entry"] >= 2 * rows["ledger_transaction"]
    books = report["books"]
    assert books["debits_cents"] == books["credits_cents"] > 0
    assert books["unbalanced_transactions"] == 0 and books["balanced"]

    timed = {row["route"] for row in report["routes"]}
    assert timed | set(report["missing"]) == {probe.route for probe in PROBES}
    assert not timed & set(report["missing"])
    assert set(EXISTING) <= timed
    for row in report["routes"]:
        assert row["statuses"] == ({"200": row["n"]} if row["n"] else {}), row
        assert row["page"] == "next" or row["n"] == 5, row
    assert len(report["slowest"]) == 3
    assert all(found["plan"] is None or "Execution Time" in found["plan"] for found in report["slowest"])
    assert any(found["plan"] for found in report["slowest"])
    assert "missing" in format_report(report) or not report["missing"]
