"""One meaning of "collected" everywhere: the demo's summary and `billing report` count card money
kept for invoices as "collected for invoices", card deposits apart, and their sum as "total received"."""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from demo.report import print_report
from demo.summary import summarize
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.subscriptions import Subscription
from operations.reports import finance_report
from tests.cli.conftest import Billing, eventually
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


def active(engine: Engine, subscription_id: str) -> bool:
    with Session(engine) as session:
        row = session.get(Subscription, subscription_id)
        return row is not None and row.status == "active"


async def test_demo_summary_and_report_agree_on_collected_and_received(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    clinic = make_clinic(db, price_cents=3_900)
    card, _ = await save_card(db, sandbox_server, clinic)
    start = (date.today() - timedelta(days=2)).isoformat()
    enrolled = await billing("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", clinic.plan_id, "--start-date", start, "--json")
    sub_id = enrolled.json()["subscription_id"]
    await eventually(lambda: active(db, sub_id))
    assert (await billing("deposit", clinic.client_id, "--card", card, "--amount", "50.00", "--json")).json()["status"] == "approved"

    summary = summarize(db, [*sandbox.transactions()], wall_seconds=0.0)
    today = pendulum.now("America/Chicago").date()
    report = finance_report(db, today - timedelta(days=1), today + timedelta(days=1)).totals
    assert (summary["collected_cents"], summary["deposits_paid_cents"]) == (3_900, 5_000)
    assert (report.collected.cents, report.deposits_paid.cents, report.received.cents) == (3_900, 5_000, 8_900)

    console = Console(record=True, width=200)
    print_report(console, {**summary, "months": 1}, ui_url=None, namespace="default")
    shown = console.export_text()
    for label, amount in (("collected for invoices", "$39.00"), ("deposits paid by card", "$50.00"), ("total received", "$89.00")):
        line = next(row for row in shown.splitlines() if label in row)
        assert amount in line, line
    table = await billing("report", "--from", today.isoformat(), "--to", today.isoformat())
    for label, amount in (("collected for invoices", "$39.00"), ("deposits paid by card", "$50.00"), ("total received", "$89.00")):
        line = next(row for row in table.stdout.splitlines() if label in row)
        assert amount in line, line
