"""Term end (renewal, cancel at term end) and a card that expires before the next due date."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations import subscriptions as commands
from tests.subscriptions.helpers import (
    approved_sales_per_reference,
    assert_books_match_gateway,
    events,
    invoices,
    local_today,
    payments,
    start,
    start_held,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


async def test_term_renews_by_itself_and_cancel_at_term_end_stops_after_the_next_term(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone="America/Denver", term_months=2, auto_renew=True)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today("America/Denver") - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=70))  # two cycles, the term ends, a third cycle
    assert "subscription.renewed" in events(db, sub_id)
    assert len(invoices(db, sub_id)) == 3

    result = await commands.cancel(temporal_env.client, sub_id, mode="term_end", reason="not renewing")
    assert result.accepted and (await commands.describe(temporal_env.client, sub_id)).cancel_at_term_end
    await temporal_env.fast_forward(handle)
    assert await handle.result() == "cancelled"
    assert len(invoices(db, sub_id)) == 4  # the second term is billed in full, nothing after it
    assert events(db, sub_id)[-1] == "subscription.cancelled"
    assert_books_match_gateway(db, sandbox)


async def test_card_expiring_before_the_next_due_date_is_announced_and_never_charged(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=2, auto_renew=False)
    await save_card(db, sandbox_server, clinic, exp_month=3, exp_year=2027)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 10))
    assert await handle.result() == "ended"

    sub_id = subscription_id_of(handle)
    first, second = invoices(db, sub_id)
    assert (first.status, second.status) == ("paid", "open")
    assert [p.invoice_id for p in payments(db, sub_id)] == [first.id]  # no attempt on the expired card
    assert approved_sales_per_reference(sandbox) == {first.id: 1}
    kinds = events(db, sub_id)
    assert kinds.index("card.expiring") < kinds.index("payment.not_attempted")
    assert_books_match_gateway(db, sandbox)
