"""Finance over HTTP, on the real database, Temporal dev server and Gravity sandbox: the period
report, the audit trails, reconciliation with the gateway, ledger balances and the journal, each as
JSON and as CSV, and each bad parameter refused with a 422 (or 404) naming it."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pendulum
import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.clinic import Client
from models.db import session_scope
from models.plans import HealthPlan
from operations.history.scope import UnknownSubject
from operations.history.trail import audit_trail
from operations.payments import CounterLine, create_counter_invoice_for
from tests.api.helpers import ok, refused
from tests.support.clinic import Clinic, make_clinic
from tests.support.cycles import paid_first_cycle

YEARLY, MONTHLY, COUNTER = 60_000, 4_500, 12_000
TZ = "America/Chicago"


@pytest.fixture
async def gateways(sandbox_server: SandboxServer) -> AsyncIterator[GatewayDirectory]:
    directory = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    yield directory
    await directory.aclose()


@pytest.fixture
async def books(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer, sandbox: SandboxControl) -> dict[str, str]:
    """A yearly plan's paid cycle, a monthly plan's paid cycle and an open counter invoice, today
    (over an emptied sandbox: the reconciliation reads its list of transactions too)."""
    yearly = make_clinic(db, price_cents=YEARLY, interval_months=12, term_months=12, timezone=TZ)
    subscription_id, invoice_id = await paid_first_cycle(db, gateways, sandbox_server, yearly, _today().subtract(days=3))
    monthly = _second_client(db, yearly)
    await paid_first_cycle(db, gateways, sandbox_server, monthly, _today().subtract(days=3))
    create_counter_invoice_for(db, client_id=yearly.client_id, location_id=yearly.location_id, lines=[CounterLine("Dental", COUNTER)])
    return {"location_id": yearly.location_id, "client_id": yearly.client_id, "subscription_id": subscription_id, "invoice_id": invoice_id}


def _today() -> pendulum.Date:
    return pendulum.now(TZ).date()


def _second_client(db: Engine, clinic: Clinic) -> Clinic:
    """Another client of the same location on a monthly plan."""
    other = make_clinic(db, price_cents=MONTHLY, timezone=TZ)
    with session_scope(db) as session:
        session.execute(update(Client).where(col(Client.id) == other.client_id).values(location_id=clinic.location_id))
        session.execute(update(HealthPlan).where(col(HealthPlan.id) == other.plan_id).values(location_id=clinic.location_id))
    return Clinic(clinic.location_id, other.client_id, other.pet_id, other.plan_id)


def _csv_rows(response: httpx.Response, filename_start: str) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{filename_start}') and disposition.endswith('.csv"'), disposition
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_the_period_report_shows_deferred_revenue(api: httpx.AsyncClient, books: dict[str, str]) -> None:
    period = _today().format("YYYY-MM")
    report = ok(await api.get("/finance/report", params={"period": period, "location_id": books["location_id"]}))
    here = report["locations"][0]
    assert (report["from"], report["amounts_in"]) == (_today().start_of("month").isoformat(), "cents")
    assert here["billed"] == {"count": 3, "cents": YEARLY + MONTHLY + COUNTER}
    assert here["collected"] == {"count": 2, "cents": YEARLY + MONTHLY}
    assert here["deferred"] == {"count": 1, "cents": YEARLY}
    assert here["recognized"] == {"count": 0, "cents": 0} and here["deferred_held"]["cents"] == YEARLY

    rows = _csv_rows(await api.get("/finance/report", params={"period": period, "format": "csv"}), f"report-{period}")
    deferred = next(r for r in rows if r["location_id"] == "ALL" and r["metric"] == "deferred")
    assert (deferred["count"], deferred["cents"]) == ("1", str(YEARLY))


async def test_the_audit_trails_answer_json_and_csv_and_404_for_an_unknown_id(api: httpx.AsyncClient, books: dict[str, str]) -> None:
    trail = ok(await api.get(f"/finance/audit/subscriptions/{books['subscription_id']}"))
    assert trail["subject"] == "subscription" and trail["id"] == books["subscription_id"]
    assert trail["workflow_history_complete"] is True
    kinds = {entry["kind"] for entry in trail["entries"]}
    assert "ledger:invoice_issued" in kinds, kinds
    rows = _csv_rows(await api.get(f"/finance/audit/subscriptions/{books['subscription_id']}", params={"format": "csv"}), "audit-subscription-")
    assert len(rows) == len(trail["entries"]) and {r["kind"] for r in rows} == kinds

    person = ok(await api.get(f"/finance/audit/clients/{books['client_id']}"))
    assert any(entry.get("invoice_id") == books["invoice_id"] for entry in person["entries"])
    assert _csv_rows(await api.get(f"/finance/audit/clients/{books['client_id']}", params={"format": "csv"}), "audit-client-")

    refused(await api.get("/finance/audit/subscriptions/sub_nobody"), 404, "subscription_id")
    refused(await api.get("/finance/audit/clients/cli_nobody"), 404, "client_id")


async def test_reconciliation_matches_the_gateway_and_names_a_difference(api: httpx.AsyncClient, db: Engine, books: dict[str, str]) -> None:
    day = _today().isoformat()
    result = ok(await api.get("/finance/reconciliation", params={"date": day, "location_id": books["location_id"]}))
    assert (result["checked"], result["matched"], result["reconciled"]) == (2, 2, True)
    assert sorted(m["ours_cents"] for m in result["movements"]) == [MONTHLY, YEARLY]

    with session_scope(db) as session:
        yearly = session.exec(select(Payment).where(Payment.invoice_id == books["invoice_id"])).one()
        session.execute(update(Payment).where(col(Payment.id) == yearly.id).values(approved_cents=YEARLY - 1))
    result = ok(await api.get("/finance/reconciliation", params={"date": day}))
    assert result["reconciled"] is False
    assert [(d["external_transaction_id"], d["ours_cents"], d["gateway_cents"], d["status"]) for d in result["differences"]] == [
        (yearly.external_transaction_id, YEARLY - 1, YEARLY, "differs")
    ]
    rows = _csv_rows(await api.get("/finance/reconciliation", params={"date": day, "format": "csv"}), f"reconciliation-{day}")
    assert sorted(r["status"] for r in rows) == ["differs", "matched"]


async def test_ledger_balances_per_account_and_period(api: httpx.AsyncClient, books: dict[str, str]) -> None:
    period = _today().format("YYYY-MM")
    result = ok(await api.get("/finance/ledger/balances", params={"period": period, "location_id": books["location_id"]}))
    accounts = {a["account"]: a for a in result["accounts"]}
    deferred = accounts["deferred_revenue"]
    assert (deferred["opening_cents"], deferred["debits_cents"], deferred["credits_cents"], deferred["closing_cents"]) == (0, 0, YEARLY, -YEARLY)
    assert accounts["plan_revenue"]["closing_cents"] == -MONTHLY
    assert accounts["accounts_receivable"]["closing_cents"] == COUNTER
    assert sum(a["closing_cents"] for a in result["accounts"]) == 0
    assert sum(a["debits_cents"] for a in result["accounts"]) == sum(a["credits_cents"] for a in result["accounts"])

    later = _today().add(months=1).format("YYYY-MM")
    moved_on = {a["account"]: a for a in ok(await api.get("/finance/ledger/balances", params={"period": later}))["accounts"]}
    assert moved_on["deferred_revenue"]["opening_cents"] == -YEARLY and moved_on["deferred_revenue"]["credits_cents"] == 0

    rows = _csv_rows(await api.get("/finance/ledger/balances", params={"period": period, "format": "csv"}), f"ledger-balances-{period}")
    assert {r["account"]: r["closing_cents"] for r in rows}["deferred_revenue"] == str(-YEARLY)


async def test_the_journal_balances_per_transaction_in_json_and_csv(api: httpx.AsyncClient, books: dict[str, str]) -> None:
    day = _today().isoformat()
    result = ok(await api.get("/finance/journal", params={"date": day, "location_id": books["location_id"]}))
    assert result["debits_cents"] == result["credits_cents"] == 2 * (YEARLY + MONTHLY) + COUNTER
    assert result["transactions"] == 5  # two cycles issued and paid, one counter invoice issued

    rows = _csv_rows(await api.get("/finance/journal", params={"date": day, "location_id": books["location_id"], "format": "csv"}), f"journal-{day}")
    assert list(rows[0]) == ["JournalDate", "JournalNo", "AccountName", "Debits", "Credits", "Description", "Reference", "Location", "Client", "Invoice"]
    per_entry: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert (row["Debits"] == "") != (row["Credits"] == ""), row
        per_entry[row["JournalNo"]] += Decimal(row["Debits"] or "0") - Decimal(row["Credits"] or "0")
    assert len(per_entry) == 5 and set(per_entry.values()) == {Decimal(0)}
    deferred = [r for r in rows if r["AccountName"] == "deferred_revenue"]
    assert [r["Credits"] for r in deferred] == ["600.00"] and deferred[0]["Invoice"] == books["invoice_id"]

    empty = ok(await api.get("/finance/journal", params={"date": _today().subtract(days=30).isoformat()}))
    assert empty["lines"] == [] and empty["debits_cents"] == 0


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/finance/report", {"period": "2026-13"}, 422, "period"),
        ("/finance/report", {}, 422, "period"),
        ("/finance/report", {"period": "2026-12", "location_id": "loc_nowhere"}, 422, "location_id"),
        ("/finance/report", {"period": "2026-12", "format": "xml"}, 422, "format"),
        ("/finance/ledger/balances", {"period": "26-12"}, 422, "period"),
        ("/finance/ledger/balances", {"period": "2026-12", "location_id": "bad id"}, 422, "location_id"),
        ("/finance/journal", {"date": "2026-02-30"}, 422, "date"),
        ("/finance/journal", {"date": "0001-01-01"}, 422, "date"),
        ("/finance/journal", {"date": "2026-12-01", "location_id": "loc_nowhere"}, 422, "location_id"),
        ("/finance/reconciliation", {"date": "yesterday"}, 422, "date"),
        ("/finance/reconciliation", {"date": "0"}, 422, "date"),
        ("/finance/journal", {"date": "20261201"}, 422, "date"),
        ("/finance/reconciliation", {"date": "9999-12-31"}, 422, "date"),
        ("/finance/audit/subscriptions/sub_1", {"format": "pdf"}, 422, "format"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(api: httpx.AsyncClient, path: str, params: dict[str, str], status: int, field: str) -> None:
    refused(await api.get(path, params=params), status, field)


async def test_finance_needs_the_bearer_token(anonymous: httpx.AsyncClient) -> None:
    refused(await anonymous.get("/finance/report", params={"period": "2026-12"}), 401, "Authorization")


async def test_the_audit_trail_answers_with_the_books_when_temporal_is_slow(db: Engine, temporal_env: WorkflowEnvironment, books: dict[str, str]) -> None:
    trail = await audit_trail(temporal_env.client, db, "subscription", books["subscription_id"], temporal_timeout_s=0)
    assert trail.workflow_history_complete is False and trail.workflows == []
    assert {entry.source for entry in trail.entries} == {"database"}
    with pytest.raises(UnknownSubject):
        await audit_trail(temporal_env.client, db, "client", books["client_id"], reach=frozenset({"loc_elsewhere"}))
