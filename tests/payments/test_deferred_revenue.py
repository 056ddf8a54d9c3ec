"""Deferred revenue on the real PostgreSQL and sandbox: a yearly plan's paid cycle (and its
enrollment fee) is credited to deferred revenue and earned a twelfth a month, to the cent; a monthly
plan is booked as before; the janitor posts the months that have begun, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment

from activities.janitor import JanitorActivities
from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from books.attempts import lock_invoice
from books.ledger import account_balances, is_balanced
from books.recognition import deferred_invoices, installments, months_due, recognize_invoice, unwind_recognized
from books.voiding import write_off_unpaid
from foundation.contracts import JanitorInput
from foundation.ids import invoice_id_for_cycle, revenue_recognized_reference
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import session_scope
from models.ledger import Account, LedgerEntry, LedgerTransaction
from operations.enrollment import EnrollRequest, record_enrollment
from operations.reports import finance_report
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from tests.support.cycles import paid_first_cycle

PRICE, FEE = 100_007, 2_501  # neither divides by twelve: the last month takes the remainder


def _recognized(db: Engine, invoice_id: str) -> list[int]:
    """Each recognition posting's plan and fee revenue together, in month order."""
    with Session(db) as session:
        rows = session.exec(
            select(LedgerTransaction.reference, LedgerEntry.amount_cents)
            .join(LedgerEntry, col(LedgerEntry.transaction_id) == LedgerTransaction.id)
            .where(LedgerTransaction.invoice_id == invoice_id, LedgerTransaction.kind == "revenue_recognized", LedgerEntry.account == "deferred_revenue")
        ).all()
    by_month = {int(reference.rsplit(":", 1)[1]): cents for reference, cents in rows}
    return [by_month[m] for m in sorted(by_month)]


def _recognize(db: Engine, as_of: datetime) -> int:
    with session_scope(db) as session:
        pending = deferred_invoices(session, as_of, limit=100)
    posted = 0
    for one in pending:
        with session_scope(db) as session:
            posted += recognize_invoice(session, one, as_of)
    return posted


def test_installments_sum_exactly_and_months_begin_on_the_period_day() -> None:
    assert installments(PRICE) == [8_333] * 11 + [8_344]
    assert sum(installments(PRICE)) == PRICE and sum(installments(11)) == 11 and installments(11) == [0] * 11 + [11]
    assert months_due(date(2027, 1, 31), date(2027, 1, 30)) == 0
    assert months_due(date(2027, 1, 31), date(2027, 1, 31)) == 1
    assert months_due(date(2027, 1, 31), date(2027, 2, 28)) == 2  # the 31st falls on February's last day
    assert months_due(date(2027, 1, 31), date(2029, 1, 1)) == 12
    assert revenue_recognized_reference("inv_1", 3) == "revenue_recognized:inv_1:3"


async def test_a_yearly_plan_is_earned_a_twelfth_a_month_to_the_cent(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12, timezone="America/Chicago")
    start_date = date(2026, 11, 1)
    _, invoice_id = await paid_first_cycle(db, gateways, sandbox_server, clinic, start_date)
    with Session(db) as session:
        balances = account_balances(session)
    assert balances.get("deferred_revenue") == -(PRICE + FEE)
    assert balances.get("plan_revenue", 0) == 0 and balances.get("fee_revenue", 0) == 0

    before = datetime(2026, 10, 31, 12, tzinfo=UTC)
    assert _recognize(db, before) == 0
    third_month = datetime(2027, 1, 1, 15, tzinfo=UTC)  # 09:00 in Chicago on the first day of the third month
    assert _recognize(db, third_month) == 3
    assert _recognize(db, third_month) == 0  # idempotent: nothing twice
    assert _recognized(db, invoice_id) == [installments(PRICE)[0] + installments(FEE)[0]] * 3

    # The rows were written today (the report counts by when the books recorded them): all three months.
    today_report = finance_report(db, date.today() - timedelta(days=1), date.today() + timedelta(days=1), location_id=clinic.location_id)
    assert today_report.totals.deferred.cents == PRICE + FEE
    assert today_report.totals.recognized.cents == 3 * (installments(PRICE)[0] + installments(FEE)[0])
    assert today_report.totals.deferred_held.cents == PRICE + FEE - today_report.totals.recognized.cents

    assert _recognize(db, datetime(2028, 1, 1, tzinfo=UTC)) == 9
    months = _recognized(db, invoice_id)
    assert len(months) == 12 and sum(months) == PRICE + FEE
    assert months[-1] == installments(PRICE)[-1] + installments(FEE)[-1]
    with Session(db) as session:
        balances = account_balances(session)
        assert is_balanced(session)
    assert balances.get("deferred_revenue", 0) == 0
    assert (balances.get("plan_revenue"), balances.get("fee_revenue")) == (-PRICE, -FEE)
    assert _recognize(db, datetime(2028, 6, 1, tzinfo=UTC)) == 0


async def test_a_monthly_plan_is_booked_as_revenue_at_once(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=4_500, enrollment_fee_cents=2_000)
    await paid_first_cycle(db, gateways, sandbox_server, clinic, date(2026, 11, 1))
    with Session(db) as session:
        balances = account_balances(session)
    assert (balances.get("plan_revenue"), balances.get("fee_revenue"), balances.get("deferred_revenue", 0)) == (-4_500, -2_000, 0)
    assert _recognize(db, datetime(2028, 1, 1, tzinfo=UTC)) == 0


async def test_the_janitor_recognizes_the_months_begun(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=12_000, interval_months=12, term_months=12)
    today = date.today()
    start_date = date(today.year - 1, today.month, 1) + timedelta(days=40)  # about ten months ago
    _, invoice_id = await paid_first_cycle(db, gateways, sandbox_server, clinic, start_date)
    expected = months_due(start_date, today)
    janitor = JanitorActivities(db, gateways)
    report = await ActivityEnvironment().run(janitor.resolve_stale_money, JanitorInput())
    assert report.recognized == expected and 9 <= expected <= 12
    assert _recognized(db, invoice_id) == [1_000] * expected
    again = await ActivityEnvironment().run(janitor.resolve_stale_money, JanitorInput())
    assert again.recognized == 0


def test_a_void_takes_what_was_recognized_back_off_revenue() -> None:
    reversal = [(Account.RECEIVABLE, -(PRICE + FEE)), (Account.DEFERRED_REVENUE, PRICE + FEE)]
    recognized = {Account.PLAN_REVENUE: 3 * 8_333, Account.FEE_REVENUE: 3 * 208}
    unwound = unwind_recognized(reversal, recognized)
    assert sum(cents for _, cents in unwound) == 0
    assert dict(unwound) == {
        Account.RECEIVABLE: -(PRICE + FEE),
        Account.DEFERRED_REVENUE: PRICE + FEE - 3 * (8_333 + 208),
        Account.PLAN_REVENUE: 3 * 8_333,
        Account.FEE_REVENUE: 3 * 208,
    }
    assert unwind_recognized(reversal, {}) == reversal


async def test_a_written_off_yearly_invoice_earns_what_was_paid_at_once(
    db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12)
    card_id, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.partial_next(card_ref, 40_000)
    enrollment = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    workflow_input, _ = record_enrollment(db, enrollment)
    request = first_attempt(workflow_input)
    await ActivityEnvironment().run(SubscriptionActivities(db, gateways).charge_cycle, request)
    invoice_id = invoice_id_for_cycle(workflow_input.setup.subscription_id, request.period_start)
    with session_scope(db) as session:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None and (invoice.status, invoice.paid_cents) == ("open", 40_000)
        assert write_off_unpaid(session, invoice, reason="cancelled") == PRICE + FEE - 40_000
    with Session(db) as session:
        balances = account_balances(session)
        assert is_balanced(session)
    assert balances.get("deferred_revenue", 0) == 0
    assert balances.get("plan_revenue", 0) + balances.get("fee_revenue", 0) == -40_000
    assert _recognize(db, datetime(2028, 1, 1, tzinfo=UTC)) == 0  # a void invoice has nothing left to recognize


async def test_a_sweep_page_holds_only_invoices_with_a_month_due(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    """An invoice recognized up to date is not read again until its next month begins: otherwise the
    oldest invoices fill every page of the sweep and newer ones wait for months."""
    older = make_clinic(db, price_cents=12_000, interval_months=12, term_months=12, timezone="America/Chicago")
    newer = make_clinic(db, price_cents=24_000, interval_months=12, term_months=12, timezone="America/Chicago")
    _, older_invoice = await paid_first_cycle(db, gateways, sandbox_server, older, date(2026, 11, 1))
    _, newer_invoice = await paid_first_cycle(db, gateways, sandbox_server, newer, date(2026, 12, 1))
    assert _recognize(db, datetime(2026, 11, 20, 15, tzinfo=UTC)) == 1  # the older one's first month
    with session_scope(db) as session:
        page = deferred_invoices(session, datetime(2026, 11, 25, 15, tzinfo=UTC), limit=1)
    assert page == []  # nothing is due anywhere yet
    with session_scope(db) as session:
        page = deferred_invoices(session, datetime(2026, 12, 1, 15, tzinfo=UTC), limit=1)
    assert [one.invoice_id for one in page] == [older_invoice]
    assert _recognize(db, datetime(2026, 12, 1, 15, tzinfo=UTC)) == 2
    with session_scope(db) as session:
        assert deferred_invoices(session, datetime(2026, 12, 20, 15, tzinfo=UTC), limit=1) == []
    assert len(_recognized(db, newer_invoice)) == 1
