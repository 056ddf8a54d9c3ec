"""Finance's five questions, each answered by its README command on a demo's books (`billing --demo
...`), and each answer checked against the books read straight from the demo's database.

The demo is played in-process on the suite's servers (its own database tables, a sandbox with the
demo's front-desk devices, the time-skipping Temporal server), then recorded the way `billing demo`
records it, so the everyday commands reach it through `--demo`. Periods span the whole run, from
the day it was played through two years on, so the checks hold whether the books carry the day the
demo ran or its simulated dates.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pendulum
import pytest
from sqlalchemy import Engine, func
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from cli.operator_stack import use_demo_books
from demo.leftovers import terminate_running
from demo.play import DemoOptions, DemoRun
from demo.record import DEMO_SANDBOX_FILE, DemoRecord, write_record
from demo.sandbox_process import SandboxProcess
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Invoice, Payment, Refund
from models.clinic import Client, Location
from models.ledger import Account, LedgerEntry
from models.subscriptions import Subscription
from operations.reconciliation import APPROVED, GIVE_BACK, SALE
from tests.cli.conftest import Run, invoke

IN_DUNNING = ("past_due", "suspended")


@pytest.fixture
def demo_sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox like the one `billing demo` starts: the sandbox merchant with its default devices
    (front-desk-1, -2), its state kept in the data folder where `billing --demo reconcile` reads it."""
    with SandboxServer({SANDBOX_OID: SANDBOX_TOKEN}, state_file=tmp_path / DEMO_SANDBOX_FILE, log_level="critical") as server:
        yield server


async def billing(environment: dict[str, str], *args: str) -> Run:
    try:
        return await asyncio.to_thread(invoke, environment, "--demo", *args)
    finally:
        use_demo_books(False)


def _sum(session: Session, query: Any) -> int:
    return int(session.exec(query).one())


async def test_the_five_questions_on_the_demo_books(
    db: Engine, database_url: str, temporal_env: WorkflowEnvironment, demo_sandbox: SandboxServer, cli_environment: dict[str, str], tmp_path: Path
) -> None:
    played_on = date.today()
    client = temporal_env.client
    options = DemoOptions(clients=8, months=3, seed=11, workers=1)  # one worker: the one in this process
    run = DemoRun(options, client, database_url, SandboxProcess(demo_sandbox.root_url), temporal_address="", namespace=client.namespace)
    try:
        summary = await run.play(lambda message: None)
    finally:
        with contextlib.suppress(Exception):
            await terminate_running(client, run.task_queue)
    assert summary["reconciled_with_gateway"] and summary["ledger_balanced"] and summary["double_charges"] == 0, summary
    _front_desk_in_the_demo_year(db, demo_sandbox, played_on)
    database = make_url(database_url).database
    assert database
    write_record(tmp_path, DemoRecord(database=database, task_queue=run.task_queue, namespace=client.namespace, sandbox_state=DEMO_SANDBOX_FILE))
    sandbox_url = urlsplit(demo_sandbox.root_url)
    env = {
        **cli_environment,
        "BILLING_DATA_DIR": str(tmp_path),
        "BILLING_SANDBOX_HOST": sandbox_url.hostname or "",
        "BILLING_SANDBOX_PORT": str(sandbox_url.port),
    }

    await _statement_question(env, db, played_on)
    await _dunning_question(env, db)
    await _history_question(env, db)
    await _report_question(env, db, played_on, tmp_path / "run.csv")
    await _reconcile_question(env, db, demo_sandbox)


def _front_desk_in_the_demo_year(db: Engine, sandbox: SandboxServer, played_on: date) -> None:
    """The counter visit happens in the simulated year's third month, not on the day it was played:
    its invoices, terminal sales and their refunds and voids, in the books and at the gateway."""
    first_day = (played_on.replace(day=1) + timedelta(days=32)).replace(day=1)
    visit_month = pendulum.date(first_day.year, first_day.month, 1).add(months=2)
    with Session(db) as session:
        sales = session.exec(select(Payment).where(Payment.method == "terminal")).all()
        given_back = session.exec(select(Refund).where(col(Refund.payment_id).in_([sale.id for sale in sales]))).all()
        counter = session.exec(select(Invoice.created_at).where(Invoice.kind == "counter")).all()
    ours = {sale.external_transaction_id for sale in sales} | {back.external_transaction_id for back in given_back}
    with SandboxControl(sandbox.root_url) as control:
        at_gateway = [row["created_at"] for row in control.transactions() if row["external_transaction_id"] in ours]
    stamps = [*counter, *(sale.created_at for sale in sales), *(back.created_at for back in given_back)]
    books = [at.date() for at in stamps if at is not None]
    gateway = [pendulum.parse(str(at)).date() for at in at_gateway]  # type: ignore[union-attr]
    assert sales and given_back and len(at_gateway) == len(ours) and len(books) == len(counter) + len(ours)
    assert {(day.year, day.month) for day in books + gateway} == {(visit_month.year, visit_month.month)}, (books, gateway)


async def _statement_question(env: dict[str, str], db: Engine, played_on: date) -> None:
    """1. What did this client pay, invoice by invoice: the client who paid at the counter, prepaid and was refunded."""
    with Session(db) as session:
        refunded = session.exec(select(Payment.invoice_id).join(Refund, col(Refund.payment_id) == Payment.id)).first()
        client = session.get(Client, session.exec(select(Invoice.client_id).where(Invoice.id == refunded)).one())
        assert client is not None
        invoices = session.exec(select(Invoice).where(Invoice.client_id == client.id)).all()
        kept = select(func.coalesce(func.sum(Payment.approved_cents), 0)).join(Invoice, col(Invoice.id) == Payment.invoice_id)
        kept = kept.where(Invoice.client_id == client.id, Payment.method != "credit", col(Payment.status).in_(("approved", "voided", "refunded")))
        paid = _sum(session, kept.where(Payment.purpose == "invoice"))
        given_back = select(func.coalesce(func.sum(Refund.amount_cents), 0)).join(Payment, col(Payment.id) == Refund.payment_id)
        given_back = given_back.join(Invoice, col(Invoice.id) == Payment.invoice_id).where(Invoice.client_id == client.id, Refund.status == "done")
        refunded_cents = _sum(session, given_back)
    found = (await billing(env, "clients", "find", client.name.split()[0], "--json")).json()
    assert client.id in [match["client_id"] for match in found["clients"]]

    # The run spans at most two calendar years: the day it was played, and its simulated months.
    statements = [(await billing(env, "statement", client.id, "--year", str(year), "--json")).json() for year in (played_on.year, played_on.year + 1)]
    lines = [line for statement in statements for line in statement["invoices"]]
    totals = {name: sum(statement["totals"][name] for statement in statements) for name in statements[0]["totals"]}
    assert sorted(line["invoice_id"] for line in lines) == sorted(invoice.id for invoice in invoices)
    assert totals["total_cents"] == sum(invoice.total_cents for invoice in invoices)
    assert totals["paid_cents"] == paid
    assert totals["refunded_cents"] == refunded_cents > 0
    assert totals["balance_cents"] == sum(invoice.total_cents - invoice.paid_cents for invoice in invoices if invoice.status == "open")


async def _dunning_question(env: dict[str, str], db: Engine) -> None:
    """2. Which subscriptions are in dunning or suspended now: exactly those the books say."""
    with Session(db) as session:
        expected = sorted(session.exec(select(Subscription.id).where(col(Subscription.status).in_(IN_DUNNING))).all())
        statuses = set(session.exec(select(Subscription.status)).all())
    listed = (await billing(env, "dunning", "--json")).json()["subscriptions"]
    assert sorted(row["subscription_id"] for row in listed) == expected
    assert statuses, "the demo enrolled no one"


async def _history_question(env: dict[str, str], db: Engine) -> None:
    """3. One subscription's attempts beside its workflow history: a subscription whose card was declined, then recovered."""
    with Session(db) as session:
        declined = select(Invoice.subscription_id).join(Payment, col(Payment.invoice_id) == Invoice.id).where(Payment.status == "declined")
        subscription_id = session.exec(declined.order_by(col(Invoice.subscription_id))).first()
        assert subscription_id is not None
        attempts = session.exec(
            select(Payment.id, Payment.status).join(Invoice, col(Invoice.id) == Payment.invoice_id).where(Invoice.subscription_id == subscription_id)
        ).all()
    trail = (await billing(env, "history", "subscription", subscription_id, "--json")).json()
    assert trail["workflow_history_complete"] is True
    assert any(workflow["workflow_type"] == "Subscription" for workflow in trail["workflows"])
    assert {entry["source"] for entry in trail["entries"]} >= {"temporal", "database"}
    shown = {entry["payment_id"] for entry in trail["entries"] if entry["payment_id"]}
    assert {payment_id for payment_id, _ in attempts} <= shown
    assert {status for _, status in attempts} >= {"declined", "approved"}


async def _report_question(env: dict[str, str], db: Engine, played_on: date, csv_file: Path) -> None:
    """4. Collected and refunded totals as CSV, for the whole run: equal to the ledger's card money in and out."""
    period = ("--from", (played_on - timedelta(days=1)).isoformat(), "--to", (played_on + timedelta(days=730)).isoformat())
    assert (await billing(env, "report", *period, "--csv", str(csv_file))).exit_code == 0
    rows = [row for row in csv.DictReader(io.StringIO(csv_file.read_text())) if row["key"] == ""]
    locations = {row["location_id"] for row in rows}
    with Session(db) as session:
        ids = set(session.exec(select(Location.id)).all())
        clearing = select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(LedgerEntry.account == Account.GATEWAY_CLEARING)
        card_in = _sum(session, clearing.where(LedgerEntry.amount_cents > 0))
        card_out = -_sum(session, clearing.where(LedgerEntry.amount_cents < 0))
        deposits = _sum(session, select(func.coalesce(func.sum(Deposit.amount_cents), 0)).where(col(Deposit.payment_id).is_not(None)))
    (total,) = locations - ids  # the report's totals column, beside one column per location
    figures = {row["metric"]: int(row["cents"]) for row in rows if row["location_id"] == total}
    assert figures["received"] == card_in > 0
    assert figures["refunded"] == card_out > 0
    assert figures["deposits_paid"] == deposits > 0
    assert figures["collected"] == card_in - deposits


async def _reconcile_question(env: dict[str, str], db: Engine, sandbox: SandboxServer) -> None:
    """5. Do our books match the gateway: every day with a card movement, on either side, matches."""
    with SandboxControl(sandbox.root_url) as control:
        # The gateway's money movements: approved sales, refunds and voids (not card saves, nor declines).
        gateway = [row for row in control.transactions() if row["transaction_type"] in (SALE, *GIVE_BACK) and row["status"] in APPROVED]
    with Session(db) as session:
        zones = dict(session.exec(select(Location.id, Location.timezone)).all())
        ours = [*session.exec(select(Payment.location_id, Payment.created_at).where(Payment.method != "credit")).all()]
        ours += session.exec(select(Payment.location_id, Refund.created_at).join(Payment, col(Payment.id) == Refund.payment_id)).all()
    days = {pendulum.instance(at).in_timezone(zones[loc]).date() for loc, at in ours if at is not None}
    days |= {pendulum.instance(datetime.fromisoformat(str(row["created_at"]))).in_timezone(tz).date() for row in gateway for tz in zones.values()}
    compared = 0
    for day in sorted(days):
        answer = (await billing(env, "reconcile", "--date", day.isoformat(), "--json")).json()
        assert answer["reconciled"] is True and answer["differences"] == [], answer
        compared += answer["checked"]
    assert compared >= len(gateway) > 0
