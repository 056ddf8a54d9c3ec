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
from sqlmodel import Session, select

from models.billing import Invoice

EVERY_S = 5.0


@dataclass(frozen=True)
class Reached:
    """How far the demo's year has come."""

    cycles_billed: int
    latest_period: date | None


def reached(engine: Engine) -> Reached:
    with Session(engine) as session:
        cycles, latest = session.exec(select(func.count(), func.max(Invoice.period_start)).where(Invoice.kind == "subscription")).one()
    return Reached(int(cycles), latest)


def progress_line(state: Reached, *, done: int, total: int, elapsed_s: float) -> str:
    """One line for the operator: `simulated 2027-03-14, 1,204 cycles billed, 120/500 stories done, 31 s`."""
    day = state.latest_period.isoformat() if state.latest_period else "not yet"
    return f"simulated date reached {day}, {state.cycles_billed:,} cycles billed, {done}/{total} stories done, {elapsed_s:.0f} s"


async def report_every(engine: Engine, say: Callable[[str], None], *, done: Callable[[], int], total: int, started: float, every_s: float = EVERY_S) -> None:
    """Call `say` with a progress line every `every_s` seconds until cancelled (`started`: the run's `time.monotonic()`)."""
    while True:
        await asyncio.sleep(every_s)
        state = await asyncio.to_thread(reached, engine)
        say(progress_line(state, done=done(), total=total, elapsed_s=time.monotonic() - started))
