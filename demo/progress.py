"""Signs of life while the demo plays: every few seconds, how far simulated time has reached, how
many cycles are billed and how many stories are done, read from the demo's books.

Why from the books: each subscription skips its own timers, so there is no one simulated clock to
ask; the latest billed period says how far the year has come.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from models.billing import Invoice

EVERY_S = 5.0


@dataclass(frozen=True)
class Reached:
    """How far the demo's year has come: cycles billed, and the period half the billing
    subscriptions have reached (the middle one) and the furthest one."""

    cycles_billed: int
    middle_period: date | None
    latest_period: date | None


def reached(engine: Engine) -> Reached:
    with Session(engine) as session:
        latest = func.max(Invoice.period_start)
        query = select(latest).where(Invoice.kind == "subscription").group_by(col(Invoice.subscription_id))
        per_subscription = sorted(day for day in session.exec(query).all() if day is not None)
        cycles = session.exec(select(func.count()).where(Invoice.kind == "subscription")).one()
    if not per_subscription:
        return Reached(int(cycles), None, None)
    return Reached(int(cycles), per_subscription[(len(per_subscription) - 1) // 2], per_subscription[-1])


def progress_line(state: Reached, *, done: int, total: int, elapsed_s: float) -> str:
    """One line for the operator, e.g. `simulated date reached 2027-03-01 (furthest 2027-09-14), 1,204
    cycles billed, 120/501 stories done, 31 s`. Why two dates: each subscription skips its own
    timers, so a few race ahead while most are still months behind."""
    if state.middle_period is None or state.latest_period is None:
        day = "not yet"
    else:
        day = f"{state.middle_period.isoformat()} (furthest {state.latest_period.isoformat()})"
    return f"simulated date reached {day}, {state.cycles_billed:,} cycles billed, {done}/{total} stories done, {elapsed_s:.0f} s"


async def report_every(engine: Engine, say: Callable[[str], None], *, done: Callable[[], int], total: int, started: float, every_s: float = EVERY_S) -> None:
    """Call `say` with a progress line every `every_s` seconds until cancelled (`started`: the run's `time.monotonic()`)."""
    while True:
        await asyncio.sleep(every_s)
        state = await asyncio.to_thread(reached, engine)
        say(progress_line(state, done=done(), total=total, elapsed_s=time.monotonic() - started))
