"""`billing report`: a period's figures per location, from real billing (a decline recovered by
dunning, a deposit, a refund, open counter invoices), in integer cents, as JSON, CSV and a table."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from models.db import session_scope
from operations.payments import CounterLine, create_counter_invoice_for
from tests.cli.conftest import Billing, refused
from tests.subscriptions.helpers import start, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

ZERO = {"count": 0, "cents": 0}


def tally(count: int, cents: int) -> dict[str, int]:
    return {"count": count, "cents": cents}


async def test_report_per_location_from_real_billing(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    chicago = make_clinic(db, timezone="America/Chicago", price_cents=4_500, term_months=2, auto_renew=False)
    card, card_ref = await save_card(db, sandbox_server, chicago)
    sandbox.decline_next(card_ref, "insufficient_funds", count=1)
    handle = await start(temporal_env, db, chicago, date(2027, 3, 10))  # declined, recovered on the first retry, then a paid cycle
    assert await handle.result() == "ended"
    with Session(db) as session:
        recovered = session.exec(select(Payment).where(Payment.subscription_id == subscription_id_of(handle), Payment.attempt == 2)).one()
    assert (await billing("refund", recovered.id, "--amount-cents", "1000", "--json")).json()["amount_cents"] == 1_000
    assert (await billing("deposit", chicago.client_id, "--card", card, "--amount-cents", "5000", "--json")).json()["status"] == "approved"
    create_counter_invoice_for(db, client_id=chicago.client_id, location_id=chicago.location_id, lines=[CounterLine("Dental", 12_000)])

    honolulu = make_clinic(db, timezone="Pacific/Honolulu")
    create_counter_invoice_for(db, client_id=honolulu.client_id, location_id=honolulu.location_id, lines=[CounterLine("Vaccines", 3_000)])

    # The cycles are booked on their simulated days (March and April 2027), the counter work today.
    today = date.today()
    first, last = min(today - timedelta(days=1), date(2027, 3, 1)), max(today + timedelta(days=1), date(2027, 4, 30))
    period = ["--from", first.isoformat(), "--to", last.isoformat()]
    export = tmp_path / "report.csv"
    report = (await billing("report", *period, "--json", "--csv", str(export))).json()
    assert report["amounts_in"] == "cents"
    by_id = {loc["location_id"]: loc for loc in report["locations"]}
    here, there = by_id[chicago.location_id], by_id[honolulu.location_id]

    assert here["billed"] == tally(3, 4_500 + 4_500 + 12_000)
    assert here["collected"] == tally(2, 9_000) and here["collected_by_method"] == {"card_on_file": tally(2, 9_000)}
    assert here["declined"] == tally(1, 4_500) and here["declined_by_reason"] == {"insufficient_funds": tally(1, 4_500)}
    assert here["recovered"] == tally(1, 4_500) and here["recovered_by_attempt"] == {"2": tally(1, 4_500)}
    assert here["refunded"] == tally(1, 1_000)
    assert here["outstanding"] == tally(1, 12_000)
    assert here["deposits_taken"] == tally(1, 5_000) and here["deposits_held"] == tally(1, 5_000)
    assert there["billed"] == tally(1, 3_000) and there["outstanding"] == tally(1, 3_000)
    assert there["collected"] == ZERO and there["declined"] == ZERO
    assert report["totals"]["billed"] == tally(4, 24_000) and report["totals"]["outstanding"] == tally(2, 15_000)

    with export.open(newline="") as handle_csv:
        rows = list(csv.DictReader(handle_csv))
    assert {"location_id": "ALL", "metric": "billed", "key": "", "count": "4", "cents": "24000"}.items() <= _row(rows, "ALL", "billed").items()
    assert _row(rows, chicago.location_id, "recovered", "attempt 2")["cents"] == "4500"
    assert _row(rows, chicago.location_id, "declined", "insufficient_funds")["count"] == "1"

    only = (await billing("report", *period, "--location", honolulu.location_id, "--json")).json()
    assert [loc["location_id"] for loc in only["locations"]] == [honolulu.location_id]
    assert only["totals"]["billed"] == tally(1, 3_000)

    later = (await billing("report", "--from", (today + timedelta(days=2)).isoformat(), "--to", (today + timedelta(days=9)).isoformat(), "--json")).json()
    assert later["totals"]["billed"] == ZERO and later["totals"]["collected"] == ZERO
    assert later["totals"]["outstanding"] == tally(2, 15_000)  # balances as they stand, of invoices issued by then
    assert later["totals"]["deposits_held"] == tally(1, 5_000)

    table = await billing("report", *period)
    assert table.exit_code == 0 and "$240.00" in table.stdout and "insufficient_funds" in table.stdout and "on attempt 2" in table.stdout

    refused(await billing("report", "--from", "2027-02-01", "--to", "2027-01-01"), "before --from")
    refused(await billing("report", "--from", "last week", "--to", "2027-01-01"), "--from", "not a date")
    refused(await billing("report", *period, "--location", "loc_nope"), "unknown location loc_nope")


async def test_a_period_ends_at_each_locations_own_midnight(billing: Billing, db: Engine) -> None:
    chicago = make_clinic(db, timezone="America/Chicago")
    honolulu = make_clinic(db, timezone="Pacific/Honolulu")
    late = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)  # Mar 1 01:30 in Chicago, still Feb 28 21:30 in Honolulu
    for clinic in (chicago, honolulu):
        invoice_id = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Exam", 6_500)])
        with session_scope(db) as session:
            session.exec(update(Invoice).where(col(Invoice.id) == invoice_id).values(created_at=late))

    february = _by_location((await billing("report", "--from", "2026-02-01", "--to", "2026-02-28", "--json")).json())
    march = _by_location((await billing("report", "--from", "2026-03-01", "--to", "2026-03-31", "--json")).json())
    assert february[chicago.location_id]["billed"] == ZERO and march[chicago.location_id]["billed"] == tally(1, 6_500)
    assert february[honolulu.location_id]["billed"] == tally(1, 6_500) and march[honolulu.location_id]["billed"] == ZERO


def _by_location(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {loc["location_id"]: loc for loc in report["locations"]}


def _row(rows: list[dict[str, str]], location_id: str, metric: str, key: str = "") -> dict[str, str]:
    return next(r for r in rows if r["location_id"] == location_id and r["metric"] == metric and r["key"] == key)
