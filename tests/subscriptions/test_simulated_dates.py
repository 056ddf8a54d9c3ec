"""The books carry the workflow's time: a subscription played in simulated time lands each month's
charge in that month of the report, the ledger balances and the journal, not on today."""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from books.ledger import is_balanced
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.outbox import OutboxEvent
from operations import subscriptions as commands
from operations.enrollment import EnrollRequest, enroll
from operations.journal import journal
from operations.ledger_balances import ledger_balances
from operations.reports import finance_report
from tests.subscriptions.helpers import payments, start, start_held, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from worker import build_worker

MONTHS = ((2027, 2), (2027, 3), (2027, 4))


async def test_each_simulated_month_holds_its_own_charge(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, price_cents=4_500, term_months=3, auto_renew=False, timezone="America/Chicago")
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 2, 10))
    assert await handle.result() == "ended"

    for year, month in MONTHS:
        first = date(year, month, 1)
        last = pendulum.date(year, month, 1).end_of("month")
        report = finance_report(db, first, last, location_id=clinic.location_id)
        assert (report.totals.billed.count, report.totals.billed.cents) == (1, 4_500), (year, month)
        assert (report.totals.collected.count, report.totals.collected.cents) == (1, 4_500), (year, month)
        balances = {row.account: row for row in ledger_balances(db, f"{year}-{month:02d}", location_id=clinic.location_id).accounts}
        assert balances["plan_revenue"].credits_cents == 4_500, (year, month)
        assert balances["gateway_clearing"].debits_cents == 4_500, (year, month)
        day = journal(db, date(year, month, 10), location_id=clinic.location_id)
        assert len(day.lines) > 0, (year, month)
    # Nothing of the simulated quarter landed on the real today.
    today = finance_report(db, pendulum.today("America/Chicago").date(), pendulum.today("America/Chicago").date(), location_id=clinic.location_id)
    assert today.totals.billed.count == 0
    # The payments and the subscription's events carry the simulated days too.
    assert [p.created_at.date() for p in payments(db, subscription_id_of(handle)) if p.created_at] == [date(2027, 2, 10), date(2027, 3, 10), date(2027, 4, 10)]
    with Session(db) as session:
        stream = f"subscription:{subscription_id_of(handle)}"
        stamped = session.exec(select(OutboxEvent.created_at).where(OutboxEvent.stream == stream).order_by(col(OutboxEvent.seq))).all()
        assert stamped and all(at is not None and at.year == 2027 for at in stamped[1:])  # the first, enrollment, is real time
        assert is_balanced(session)


async def test_a_sandbox_told_the_time_dates_the_sales_on_the_simulated_days(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    """The demo's wiring: its workers' Gravity clients tell the sandbox the workflow's time."""
    clinic = make_clinic(db, price_cents=4_500, term_months=2, auto_renew=False, timezone="America/Chicago")
    await save_card(db, sandbox_server, clinic)
    queue = "simulated-dates-told"
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0, tell_sandbox_time=True)
    try:
        async with build_worker(temporal_env.client, db, gateways, task_queue=queue):
            request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2027, 5, 4))
            enrollment = await enroll(temporal_env.client, db, request, task_queue=queue)
            assert await temporal_env.client.get_workflow_handle(enrollment.workflow_id).result() == "ended"
    finally:
        await gateways.aclose()
    sales = [row for row in sandbox.transactions() if row["transaction_type"] == "CreditSale"]
    assert [pendulum.parse(str(row["created_at"])).date() for row in sales] == [date(2027, 5, 4), date(2027, 6, 4)]  # type: ignore[union-attr]


async def test_a_card_change_is_dated_by_the_subscriptions_time(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, price_cents=4_500, term_months=3, auto_renew=False, timezone="America/Chicago")
    await save_card(db, sandbox_server, clinic)
    spare, _ = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    handle = await start_held(temporal_env, db, clinic, date(2027, 2, 10))
    await temporal_env.fast_forward(handle, timedelta(days=(date(2027, 3, 20) - pendulum.today("UTC").date()).days))
    moment = await temporal_env.get_current_time(handle)
    assert (await commands.change_card(temporal_env.client, subscription_id_of(handle), spare)).accepted
    with Session(db) as session:
        stream = f"subscription:{subscription_id_of(handle)}"
        changed = session.exec(select(OutboxEvent.created_at).where(OutboxEvent.stream == stream, OutboxEvent.type == "subscription.card_changed")).one()
    assert changed is not None and abs(changed - moment) < timedelta(hours=1), (changed, moment)
    await temporal_env.fast_forward(handle)
    assert await handle.result() == "ended"
