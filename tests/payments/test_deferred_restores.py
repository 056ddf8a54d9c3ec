"""Deferred give-backs undone (books.recognition): an invoice written off after a downgrade credit,
and a give-back restored after a month was recognized off the smaller rest, both leave exactly
nothing in deferred revenue."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment

from activities.subscription_commands import SubscriptionCommandActivities
from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from books.attempts import lock_invoice
from books.recognition import deferred_invoices, give_back_unearned, recognize_invoice, restore_unearned
from books.settlements import void_unpaid
from foundation.contracts import PlanChangeInput
from foundation.ids import invoice_id_for_cycle
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice
from models.db import session_scope
from models.ledger import Account, LedgerEntry, LedgerTransaction
from models.plans import HealthPlan, terms_of
from operations.enrollment import EnrollRequest, record_enrollment
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from tests.support.cycles import paid_first_cycle

PRICE = 120_000


def _deferred_on(db: Engine, invoice_id: str) -> int:
    with Session(db) as session:
        total = session.exec(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerTransaction, col(LedgerTransaction.id) == LedgerEntry.transaction_id)
            .where(LedgerTransaction.invoice_id == invoice_id, LedgerEntry.account == str(Account.DEFERRED_REVENUE))
        ).one()
    return -int(total)


async def test_a_write_off_after_a_downgrade_credit_leaves_nothing_deferred(
    db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    """A yearly cycle invoice partly paid (40,000 of 120,000), a downgrade credits more than was
    paid, then the subscription is cancelled: the write-off restores the credit's give-back before
    it reverses the unpaid part, so the invoice's deferred revenue ends at zero, not below."""
    clinic = make_clinic(db, price_cents=PRICE, interval_months=12, term_months=12)
    card_id, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.partial_next(card_ref, 40_000)
    workflow_input, _ = record_enrollment(
        db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    )
    request = first_attempt(workflow_input)
    await ActivityEnvironment().run(SubscriptionActivities(db, gateways).charge_cycle, request)
    subscription_id = workflow_input.setup.subscription_id
    invoice_id = invoice_id_for_cycle(subscription_id, request.period_start)
    with session_scope(db) as session:
        session.add(
            HealthPlan(id=f"{clinic.plan_id}_basic", location_id=clinic.location_id, name="Basic", price_cents=12_000, interval_months=12, term_months=12)
        )
    with Session(db) as session:
        invoice = session.get(Invoice, invoice_id)
        plan = session.get(HealthPlan, clinic.plan_id)
        assert invoice is not None and plan is not None
        assert (invoice.status, invoice.paid_cents) == ("open", 40_000)
        period_start, period_end, terms = invoice.period_start, invoice.period_end, terms_of(plan)
    change = PlanChangeInput(
        subscription_id=subscription_id,
        old_plan=terms,
        new_plan_id=f"{clinic.plan_id}_basic",
        change_at=datetime(2026, 11, 15, 18, tzinfo=UTC),
        period_start=period_start,
        period_end=period_end,
        card_id=None,
    )
    outcome = await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).change_plan, change)
    assert -outcome.net_cents > 40_000  # credited more than was ever paid on the invoice
    with session_scope(db) as session:
        assert void_unpaid(session, invoice_id, "subscription cancelled") == invoice_id  # what a cancel does to an open cycle invoice
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None and invoice.status == "void"
    assert _deferred_on(db, invoice_id) == 0, "a written-off invoice holds nothing deferred (here it is negative)"


async def test_recognition_after_a_give_back_is_restored_still_empties_deferred(db: Engine, gateways: GatewayDirectory, sandbox_server: SandboxServer) -> None:
    """A give-back (a late approval's void) is posted, a month is recognized off the smaller rest,
    then `unapply_from_invoice` restores the give-back: the later months are the fixed twelfths
    again, and the last month takes whatever is left, so the smaller month is made up."""

    def recognize(as_of: datetime) -> None:
        with session_scope(db) as session:
            pending = deferred_invoices(session, as_of, limit=100)
        for one in pending:
            with session_scope(db) as session:
                recognize_invoice(session, one, as_of)

    clinic = make_clinic(db, price_cents=PRICE, interval_months=12, term_months=12)
    _, invoice_id = await paid_first_cycle(db, gateways, sandbox_server, clinic, date(2026, 11, 1))
    recognize(datetime(2026, 12, 1, 15, tzinfo=UTC))  # months 1 and 2: 10,000 each
    with session_scope(db) as session:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None
        give_back_unearned(session, invoice, 60_000, source_reference="refund:late", against=Account.REFUNDS, memo="late approval voided")
    recognize(datetime(2027, 1, 1, 15, tzinfo=UTC))  # month 3 off the 40,000 left: 4,000
    with session_scope(db) as session:
        invoice = lock_invoice(session, invoice_id)
        assert invoice is not None
        assert restore_unearned(session, invoice, source_reference="refund:late") == 60_000
    recognize(datetime(2028, 1, 1, tzinfo=UTC))
    assert _deferred_on(db, invoice_id) == 0, "deferred revenue must empty by the twelfth month"
