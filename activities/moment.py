"""The time an activity dates its rows: the workflow's time it was given, so a run in simulated time
(the demo, the tests) books each charge on its simulated day and production on the real one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from temporalio import activity

from gravity.client import CALLER_TIME


def activity_time(at: datetime | None) -> datetime | None:
    """`at` (the workflow's `workflow.now()` when it scheduled this activity) moved on by the time
    that passed until this attempt started (a queue backlog, retries), measured by the clock that
    scheduled it; None (a history recorded before workflows passed a time): the database's now()."""
    if at is None or not activity.in_activity():  # called as a plain function (a test, a script): `at` as given
        return at
    info = activity.info()
    return at + max(info.started_time - info.scheduled_time, timedelta(0))


@contextmanager
def dated(at: datetime | None) -> Iterator[datetime | None]:
    """`activity_time(at)`, also told to the Gravity calls made inside the block (only a sandbox
    client built to send it does: `gravity.client.CALLER_TIME`)."""
    moment = activity_time(at)
    token = CALLER_TIME.set(moment)
    try:
        yield moment
    finally:
        CALLER_TIME.reset(token)
