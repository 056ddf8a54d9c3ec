"""Deferred revenue given back, on the real PostgreSQL and sandbox: a yearly invoice paid, two months
recognized, then part or all of it refunded (the Refund path or a cancel-now settlement): what the
clinic gave back comes off what is still deferred first, the later months spread only what is left,
and the invoice's deferred revenue ends at exactly zero with revenue equal to what was kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment

from activities.refunds import Refunder
from activities.subscription_commands import SubscriptionCommandActivities
from books.attempts import lock_invoice
from books.ledger import account_balances, is_balanced
from books.recognition import deferred_invoices, installments, recognize_invoice
from books.voiding import void_invoice
from foundation.contracts import CancelInput, PlanChangeInput
from gravity.directory import GatewayDirectory
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from models.db import session_scope
from models.ledger import Account, LedgerEntry, LedgerTransaction
from models.plans import HealthPlan, terms_of
from operations.reports import FinanceReport, finance_report
from tests.support.clinic import Clinic, make_clinic
from tests.support.cycles import paid_first_cycle

PRICE, FEE = 100_007, 2_501  # neither divides by twelve
TOTAL = PRICE + FEE
START = date(2026, 11, 1)
SECOND_MONTH = datetime(2026, 12, 1, 15, tzinfo=UTC)  # 09:00 in Chicago on the second month's first day
YEAR_LATER = datetime(2028, 1, 1, tzinfo=UTC)
COMMAND_AT = datetime(2026, 12, 15, 18, tzinfo=UTC)  # a cancel-now or plan change mid-month: its books are dated then


def _report(db: Engine, clinic: Clinic) -> FinanceReport:
    """The report over every row these tests write: today's, and a command's dated at its own moment (`COMMAND_AT`)."""
    days = (date.today(), COMMAND_AT.date())
    return finance_report(db, min(days) - timedelta(days=1), max(days) + timedelta(days=1), location_id=clinic.location_id)


def _recognize(db: Engine, as_of: datetime) -> int:
    with session_scope(db) as session:
        pending = deferred_invoices(session, as_of, limit=100)
    posted = 0
    for one in pending:
        with session_scope(db) as session:
            posted += recognize_invoice(session, one, as_of)
    return posted


def _months(db: Engine, invoice_id: str) -> list[int]:
    """What each month's recognition took off deferred revenue, in month order (0 for a month that had nothing left)."""
    with Session(db) as session:
        references = session.exec(
            select(LedgerTransaction.reference).where(LedgerTransaction.invoice_id == invoice_id, LedgerTransaction.kind == "revenue_recognized")
        ).all()
        rows = session.exec(
            select(LedgerTransaction.reference, LedgerEntry.amount_cents)
            .join(LedgerEntry, col(LedgerEntry.transaction_id) == LedgerTransaction.id)
            .where(LedgerTransaction.invoice_id == invoice_id, LedgerTransaction.kind == "revenue_recognized", LedgerEntry.account == "deferred_revenue")
        ).all()
    by_month = {int(reference.rsplit(":", 1)[1]): 0 for reference in references}
    by_month.update({int(reference.rsplit(":", 1)[1]): cents for reference, cents in rows})
    return [by_month[m] for m in sorted(by_month)]


def _deferred_on(db: Engine, invoice_id: str) -> int:
    """The invoice's deferred revenue still held (credit balance, positive)."""
    with Session(db) as session:
        total = session.exec(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerTransaction, col(LedgerTransaction.id) == LedgerEntry.transaction_id)
            .where(LedgerTransaction.invoice_id == invoice_id, LedgerEntry.account == str(Account.DEFERRED_REVENUE))
        ).one()
    return -int(total)


def _payment_of(db: Engine, invoice_id: str) -> str:
    with Session(db) as session:
        payment = session.exec(select(Payment).where(Payment.invoice_id == invoice_id, Payment.status == "approved")).one()
    return payment.id


async def _paid_and_two_months(db: Engine, gateways: GatewayDirectory, server: SandboxServer, clinic: Clinic) -> tuple[str, str]:
    subscription_id, invoice_id = await paid_first_cycle(db, gateways, server, clinic, START)
    assert _recognize(db, SECOND_MONTH) == 2
    two_months = 2 * (installments(PRICE)[0] + installments(FEE)[0])
    assert _months(db, invoice_id) == [two_months // 2] * 2
    assert _deferred_on(db, invoice_id) == TOTAL - two_months
    return subscription_id, invoice_id


def _check_books(db: Engine, clinic: Clinic, invoice_id: str, *, given_back: int, left_after: int) -> None:
    """Deferred revenue empties to the cent, the months after the give-back spread exactly what was
    left, and revenue is what the clinic kept; the period report agrees."""
    assert _recognize(db, YEAR_LATER) == 10
    months = _months(db, invoice_id)
    assert len(months) == 12
    assert sum(months[2:]) == left_after  # only what was left is spread over the later months
    assert all(month <= months[0] for month in months[2:-1])  # no later month earns more than a full twelfth
    assert _deferred_on(db, invoice_id) == 0
    kept = TOTAL - given_back
    with Session(db) as session:
        balances = account_balances(session)
        assert is_balanced(session)
    recognized = -(balances.get("plan_revenue", 0) + balances.get("fee_revenue", 0))
    refunded_from_revenue = balances.get("refunds", 0)
    assert recognized == sum(months)
    assert recognized - refunded_from_revenue == kept
    assert balances.get("deferred_revenue", 0) == 0
    # The report (rows written today, and a settlement's on its own day): billed once, recognized what was kept of it, nothing held.
    report = _report(db, clinic)
    assert report.totals.deferred.cents == TOTAL
    assert report.totals.recognized.cents == sum(months)
    assert report.totals.deferred_held.cents == 0
    assert report.totals.refunded.cents == given_back


async def test_a_partial_refund_comes_off_what_is_still_deferred(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12)
    _, invoice_id = await _paid_and_two_months(db, gateways, sandbox_server, clinic)
    held = _deferred_on(db, invoice_id)
    refund = await Refunder(db, gateways).give_back(
        payment_id=_payment_of(db, invoice_id), amount_cents=30_000, kind="refund", attempt_key="refund:deferred:partial", reason="goodwill"
    )
    assert refund.status == "done"
    assert _deferred_on(db, invoice_id) == held - 30_000
    with Session(db) as session:
        assert account_balances(session).get("refunds", 0) == 0  # nothing of it was earned yet
    # The report the day of the refund: what is held dropped by the refund, nothing recognized for it.
    report = _report(db, clinic)
    assert report.totals.deferred_held.cents == held - 30_000
    _check_books(db, clinic, invoice_id, given_back=30_000, left_after=held - 30_000)


async def test_a_whole_refund_leaves_nothing_to_recognize(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12)
    _, invoice_id = await _paid_and_two_months(db, gateways, sandbox_server, clinic)
    earned = TOTAL - _deferred_on(db, invoice_id)
    refund = await Refunder(db, gateways).give_back(
        payment_id=_payment_of(db, invoice_id), amount_cents=TOTAL, kind="refund", attempt_key="refund:deferred:whole", reason="moving away"
    )
    assert refund.status == "done"
    assert _deferred_on(db, invoice_id) == 0
    with Session(db) as session:
        assert account_balances(session).get("refunds", 0) == earned  # the two months earned come off revenue
    _check_books(db, clinic, invoice_id, given_back=TOTAL, left_after=0)
    assert _months(db, invoice_id)[2:] == [0] * 10


async def test_a_cancel_now_settlement_refunds_the_unused_term_from_deferred(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12, cancellation_policy="refund_unused")
    subscription_id, invoice_id = await _paid_and_two_months(db, gateways, sandbox_server, clinic)
    held = _deferred_on(db, invoice_id)
    with Session(db) as session:
        invoice = session.get(Invoice, invoice_id)
        plan = session.get(HealthPlan, clinic.plan_id)
        assert invoice is not None and plan is not None
        period_start, period_end, terms = invoice.period_start, invoice.period_end, terms_of(plan)
    cancel = CancelInput(
        subscription_id=subscription_id,
        plan=terms,
        card_id=None,
        cancel_at=COMMAND_AT,
        period_start=period_start,
        period_end=period_end,
        open_invoice_ids=[],
        reason="moving away",
    )
    outcome = await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).cancel_subscription, cancel)
    # 321 unused days of 365 are more than the ten months still deferred: the rest comes off revenue.
    assert outcome.settlement_kind == "refund" and outcome.settlement_cents > held
    assert _deferred_on(db, invoice_id) == 0
    with Session(db) as session:
        assert account_balances(session).get("refunds", 0) == outcome.settlement_cents - held
    _check_books(db, clinic, invoice_id, given_back=outcome.settlement_cents, left_after=0)


async def test_voiding_a_refunded_yearly_invoice_leaves_no_deferred_revenue_behind(
    db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer
) -> None:
    """A void reverses the issue posting whole: what the refund took off deferred revenue goes back
    there first, so deferred revenue, revenue and refunds all end at zero; the report counts the
    invoice as billed once."""
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12)
    _, invoice_id = await _paid_and_two_months(db, gateways, sandbox_server, clinic)
    await Refunder(db, gateways).give_back(
        payment_id=_payment_of(db, invoice_id), amount_cents=TOTAL, kind="refund", attempt_key="refund:deferred:void", reason="cancelled"
    )
    with session_scope(db) as session:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None
        void_invoice(session, invoice, reason="cancelled")
    with Session(db) as session:
        balances = account_balances(session)
        assert is_balanced(session)
    assert {account: cents for account, cents in balances.items() if cents} == {}
    assert _recognize(db, YEAR_LATER) == 0
    report = _report(db, clinic)
    assert (report.totals.deferred.cents, report.totals.deferred_held.cents) == (TOTAL, 0)


async def test_a_downgrade_credit_comes_off_what_is_still_deferred(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=PRICE, enrollment_fee_cents=FEE, interval_months=12, term_months=12)
    subscription_id, invoice_id = await _paid_and_two_months(db, gateways, sandbox_server, clinic)
    held = _deferred_on(db, invoice_id)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_basic_yearly", location_id=clinic.location_id, name="Basic", price_cents=40_000, interval_months=12, term_months=12))
    with Session(db) as session:
        invoice = session.get(Invoice, invoice_id)
        plan = session.get(HealthPlan, clinic.plan_id)
        assert invoice is not None and plan is not None
        period_start, period_end, terms = invoice.period_start, invoice.period_end, terms_of(plan)
    change = PlanChangeInput(
        subscription_id=subscription_id,
        old_plan=terms,
        new_plan_id="plan_basic_yearly",
        change_at=COMMAND_AT,
        period_start=period_start,
        period_end=period_end,
        card_id=None,
    )
    outcome = await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).change_plan, change)
    credit = -outcome.net_cents
    assert 0 < credit < held
    assert _deferred_on(db, invoice_id) == held - credit

    assert _recognize(db, YEAR_LATER) == 10
    months = _months(db, invoice_id)
    assert sum(months[2:]) == held - credit and _deferred_on(db, invoice_id) == 0
    with Session(db) as session:
        balances = account_balances(session)
        assert is_balanced(session)
    assert -(balances.get("plan_revenue", 0) + balances.get("fee_revenue", 0)) == TOTAL - credit == sum(months)
    assert balances.get("client_credit") == -credit
    report = _report(db, clinic)
    assert (report.totals.deferred.cents, report.totals.recognized.cents, report.totals.deferred_held.cents) == (TOTAL, TOTAL - credit, 0)
