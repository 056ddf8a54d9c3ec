"""Calendar edge cases through the real workflow: leap-day anchors and daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.subscriptions.helpers import assert_books_match_gateway, invoices, start, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


async def test_yearly_plan_anchored_on_feb_29_bills_feb_28_in_common_years(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, interval_months=12, term_months=36, price_cents=42_000, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2028, 2, 29))
    assert await handle.result() == "ended"
    billed = invoices(db, subscription_id_of(handle))
    assert [(i.period_start, i.period_end) for i in billed] == [
        (date(2028, 2, 29), date(2029, 2, 28)),
        (date(2029, 2, 28), date(2030, 2, 28)),
        (date(2030, 2, 28), date(2031, 2, 28)),
    ]
    assert [i.status for i in billed] == ["paid"] * 3
    assert_books_match_gateway(db, sandbox)


async def test_monthly_anchor_on_the_29th_across_a_leap_february(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=4, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 12, 29))
    assert await handle.result() == "ended"
    starts = [i.period_start for i in invoices(db, subscription_id_of(handle))]
    assert starts == [date(2027, 12, 29), date(2028, 1, 29), date(2028, 2, 29), date(2028, 3, 29)]


async def test_dst_changes_keep_the_local_charge_hour_and_skip_no_cycle(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """New York, 09:00 local: EST is UTC-5, EDT is UTC-4 (DST starts Mar 14 2027, ends Nov 7 2027)."""
    clinic = make_clinic(db, timezone="America/New_York", term_months=3, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 2, 14))
    assert await handle.result() == "ended"
    due = [i.due_at.astimezone(UTC) for i in invoices(db, subscription_id_of(handle)) if i.due_at]
    assert due == [
        datetime(2027, 2, 14, 14, 0, tzinfo=UTC),  # EST
        datetime(2027, 3, 14, 13, 0, tzinfo=UTC),  # the DST day itself, EDT
        datetime(2027, 4, 14, 13, 0, tzinfo=UTC),
    ]
    assert_books_match_gateway(db, sandbox)
