"""What every finance query shares: its refusal, the month a `period` names, and the locations in reach.

`reach` is the set of location ids a caller may see (None: every location). A location outside it
is refused exactly like one that does not exist, so a scoped caller learns nothing of the others.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pendulum
from sqlmodel import Session, col, select

from models.clinic import Location

PERIOD_PATTERN = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"
_PERIOD = re.compile(PERIOD_PATTERN)
#: The years a finance query may ask about: far beyond any clinic's books, and inside what time
#: zone arithmetic can represent.
FIRST_YEAR, LAST_YEAR = 1900, 2999
#: The longest period one reconciliation covers: a quarter, so its lookups stay minutes, not hours.
MAX_PERIOD_DAYS = 92


class FinanceRefused(ValueError):
    """A finance query that cannot be answered as asked; `field` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def month_of(period: str, *, field: str = "period") -> tuple[date, date]:
    """The first and last day of the month `period` (YYYY-MM) names."""
    if not _PERIOD.match(period):
        raise FinanceRefused(field, f"{period!r} is not a month (YYYY-MM)")
    first = date(int(period[:4]), int(period[5:]), 1)
    checked_day(first, field=field)
    last = pendulum.Date(first.year, first.month, 1).end_of("month")
    return first, date(last.year, last.month, last.day)


def checked_day(day: date, *, field: str = "date") -> date:
    """`day`, when its year is one the books can hold."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise FinanceRefused(field, f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return day


def asked_period(day: date | None, start: date | None, end: date | None) -> tuple[date, date]:
    """The first and last day asked for: `day` alone (`date`), or `start` to `end` (`from`, `to`)."""
    if day is not None:
        if start is not None or end is not None:
            raise FinanceRefused("date", "give either date, or from and to, not both")
        return checked_day(day), day
    if start is None:
        raise FinanceRefused("from", "required (or date, for one day)")
    if end is None:
        raise FinanceRefused("to", "required with from")
    return checked_period(start, end)


def checked_period(start: date, end: date) -> tuple[date, date]:
    """`start` to `end` (both included), when `end` is not before `start` and the span is at most MAX_PERIOD_DAYS."""
    checked_day(start, field="from")
    checked_day(end, field="to")
    if end < start:
        raise FinanceRefused("to", f"{end.isoformat()} is before from ({start.isoformat()})")
    days = (end - start).days + 1
    if days > MAX_PERIOD_DAYS:
        raise FinanceRefused("to", f"the period is {days} days; at most {MAX_PERIOD_DAYS}")
    return start, end


def locations_in_reach(session: Session, location_id: str | None, reach: frozenset[str] | None) -> list[Location]:
    """The locations a query covers: `location_id` alone, or every one in `reach`, by name."""
    query = select(Location).order_by(Location.name, Location.id)
    if location_id is not None:
        query = query.where(Location.id == location_id)
    if reach is not None:
        query = query.where(col(Location.id).in_(reach))
    locations = list(session.exec(query))
    if location_id is not None and not locations:
        raise FinanceRefused("location_id", f"unknown location {location_id}")
    return locations


def local_day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants a location's local `day` starts and ends (end excluded), DST included."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(date.fromordinal(day.toordinal() + 1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end
