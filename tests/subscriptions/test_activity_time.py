"""The books' date of an activity that waited in the task queue (a worker backlog): not the
workflow's time when it was scheduled, but when the work happened."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.moment import activity_time


def test_an_activity_started_hours_after_it_was_scheduled_dates_its_rows_when_it_ran() -> None:
    # Scheduled at 22:00 UTC on the 4th, started by a worker at 09:00 on the 5th (first attempt): the
    # rows (a payment, a refund, a ledger posting) are written on the 5th, after the 4th was reconciled.
    scheduled = datetime(2026, 5, 4, 22, 0, tzinfo=UTC)
    started = scheduled + timedelta(hours=11)
    env = ActivityEnvironment()
    env.info = replace(ActivityEnvironment.default_info(), scheduled_time=scheduled, current_attempt_scheduled_time=scheduled, started_time=started)
    at = env.run(lambda: activity_time(scheduled))
    assert at is not None and at >= started - timedelta(minutes=1), f"dated {at}, written at {started}"
