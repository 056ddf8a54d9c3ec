"""The billing calendar: when each cycle of a subscription falls due.

Why this module exists: every cycle date and every due moment of a subscription is computed here and
nowhere else, so the workflow, the activities, the API and the tests agree to the second. It is pure
policy (standard library + pendulum, no I/O, no clock): workflow code imports it, and Temporal replays
it, so the same inputs must always give the same outputs.

Rules (issue 4, design principle 5):

* **Anchor day.** A subscription bills on its start date's day of month (the anchor, 1-31). In a
  month shorter than the anchor the cycle falls on the month's last day, and the next month returns to
  the anchor: Jan 31 -> Feb 28 (29 in a leap year) -> Mar 31 -> Apr 30 -> May 31. Every cycle is
  computed from the start date and its index (``start + index * interval`` months, then clamped), never
  by adding a month to the previous cycle, so one short month never drags later cycles to an earlier
  day.
* **Interval.** Monthly (1) or yearly (12) in practice; any whole number of months >= 1 works. A yearly
  plan started on Feb 29 bills on Feb 28 in common years and on Feb 29 in leap years.
* **Local time.** A cycle is charged at a fixed local wall time (``charge_at``, default 09:00) in the
  location's IANA time zone, and returned as an aware UTC ``datetime`` (``tzinfo=timezone.utc``).
* **Daylight saving never skips or doubles a cycle**, because every cycle is one local *date* mapped
  to exactly one instant:

  - a local time that does not exist that day (spring forward, e.g. 02:30 on 2026-03-08 in
    America/New_York) resolves *forward* by the length of the gap: 02:30 -> 03:30 EDT (07:30 UTC);
  - a local time that happens twice (fall back, e.g. 01:30 on 2026-11-01 in America/New_York) picks
    the *first* occurrence: 01:30 EDT (05:30 UTC), not 01:30 EST.

  This is the PEP 495 ``fold=0`` reading of a wall time, the same one the standard library's
  ``zoneinfo`` uses; it is spelled out here because pendulum's own default (``fold=1``) picks the
  *second* occurrence of an ambiguous time.

The spreading of many subscriptions over a window after the charge time (thundering herd) is *not*
done here; see ``workflows/spread.py``. It is applied by callers on top of these instants.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta

import pendulum
from pendulum.tz.timezone import Timezone

__all__ = [
    "charge_time_from_minutes",
    "cycle_date",
    "cycles_in_term",
    "due_instant",
    "due_instants",
    "local_instant",
    "period_for",
    "validate_tz",
]

_MAX_INTERVAL_MONTHS = 1200  # a hundred years: anything larger is a typo, not a billing interval


def _check_int(name: str, value: object, *, minimum: int) -> int:
    """Reject bools, non-ints and values below `minimum` with a message naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_interval(interval_months: object) -> int:
    value = _check_int("interval_months", interval_months, minimum=1)
    if value > _MAX_INTERVAL_MONTHS:
        raise ValueError(f"interval_months must be <= {_MAX_INTERVAL_MONTHS}, got {value}")
    return value


def _check_start(start: object) -> date:
    # datetime is a subclass of date; a datetime here would silently drop its time and zone.
    if isinstance(start, datetime) or not isinstance(start, date):
        raise ValueError(f"start must be a date (not a datetime), got {type(start).__name__}")
    return start


def validate_tz(tz: object) -> Timezone:
    """An IANA zone by name, or ValueError naming `tz` (fixed offsets like "+05:00" are refused:
    they have no daylight-saving rules and a clinic is in a place, not at an offset)."""
    if not isinstance(tz, str) or not tz.strip():
        raise ValueError(f"tz must be an IANA time zone name such as 'America/New_York', got {tz!r}")
    return _zone(tz)


@functools.lru_cache(maxsize=64)
def _zone(tz: str) -> Timezone:
    """Loaded once per name: `pendulum.timezone` looks the zone file up on disk on every call (a
    billing worker computes due dates constantly), and a zone's rules never change within a process."""
    try:
        zone = pendulum.timezone(tz)
    except Exception as exc:  # pendulum raises InvalidTimezone (and others on odd input)
        raise ValueError(f"tz {tz!r} is not a valid IANA time zone name") from exc
    if not isinstance(zone, Timezone):
        raise ValueError(f"tz {tz!r} is a fixed offset, not an IANA time zone name")
    return zone


def _check_charge_at(charge_at: object) -> time:
    if not isinstance(charge_at, time):
        raise ValueError(f"charge_at must be a datetime.time, got {type(charge_at).__name__}")
    if charge_at.tzinfo is not None:
        raise ValueError("charge_at must be a naive local wall time (the zone comes from tz)")
    return charge_at


def charge_time_from_minutes(minutes: int) -> time:
    """The local charge time for `minutes` after midnight, as stored in the contracts
    (`SubscriptionSetup.charge_at_minutes`): 540 -> 09:00."""
    value = _check_int("charge_at_minutes", minutes, minimum=0)
    if value >= 24 * 60:
        raise ValueError(f"charge_at_minutes must be < {24 * 60}, got {value}")
    return time(value // 60, value % 60)


def _days_in_month(year: int, month: int) -> int:
    """Days in a month, without the stdlib `calendar` module (this module's name shadows it for
    readers, and a date subtraction is all it takes)."""
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - timedelta(days=1)).day


def _clamped_date(start: date, months_after: int) -> date:
    """The date `months_after` months after `start`, with start's day clamped to the month's end."""
    serial = start.year * 12 + (start.month - 1) + months_after
    year, month0 = divmod(serial, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"cycle falls in year {year}, outside the supported calendar (1-9999)")
    month = month0 + 1
    return date(year, month, min(start.day, _days_in_month(year, month)))


def cycle_date(start: date, index: int, interval_months: int = 1) -> date:
    """The local calendar date cycle `index` (0 = the start date) of a subscription falls on.

    Computed from the start and the index, not from the previous cycle, so clamping never drifts:
    cycle_date(2024-01-31, 1) = 2024-02-29, cycle_date(2024-01-31, 2) = 2024-03-31.
    """
    start = _check_start(start)
    index = _check_int("index", index, minimum=0)
    interval = _check_interval(interval_months)
    return _clamped_date(start, index * interval)


def period_for(start: date, index: int, *, interval_months: int = 1) -> tuple[date, date]:
    """The service period cycle `index` pays for: (period_start, period_end), end exclusive.

    The end is the next cycle's date, so consecutive periods tile the calendar without gaps or
    overlaps, and `(period_end - period_start).days` is the day count proration divides by.
    """
    period_start = cycle_date(start, index, interval_months)
    period_end = cycle_date(start, index + 1, interval_months)
    return period_start, period_end


def local_instant(day: date, charge_at: time, *, tz: str) -> datetime:
    """The UTC instant of local wall time `charge_at` on `day` in zone `tz`.

    A wall time in a spring-forward gap resolves forward by the gap's length (02:30 -> 03:30 local);
    an ambiguous one in a fall-back overlap is its first occurrence (the one in daylight time). See
    the module docstring for why.
    """
    zone = validate_tz(tz)
    charge_at = _check_charge_at(charge_at)
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"day must be a date, got {type(day).__name__}")
    wall = (charge_at.hour, charge_at.minute, charge_at.second, charge_at.microsecond)
    first = pendulum.datetime(day.year, day.month, day.day, *wall, tz=zone, fold=0)
    if (first.hour, first.minute, first.second, first.microsecond) == wall:
        chosen = first  # an ordinary time, or the first occurrence of an ambiguous one
    else:
        # The wall time does not exist (spring-forward gap). pendulum with fold=0 shifts it
        # backwards; fold=1 shifts it forwards by the gap's length, which is the documented rule.
        chosen = pendulum.datetime(day.year, day.month, day.day, *wall, tz=zone, fold=1)
    utc = chosen.in_timezone("UTC")
    # A plain stdlib datetime: it crosses the Temporal boundary and compares with workflow.now().
    return datetime(
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond,
        tzinfo=UTC,
    )


def due_instant(
    start: date,
    index: int,
    *,
    tz: str,
    interval_months: int = 1,
    charge_at: time = time(9, 0),
) -> datetime:
    """The UTC instant cycle `index` falls due: its cycle date at `charge_at` local time in `tz`."""
    day = cycle_date(start, index, interval_months)
    return local_instant(day, charge_at, tz=tz)


def due_instants(
    start: date,
    count: int,
    *,
    tz: str,
    interval_months: int = 1,
    charge_at: time = time(9, 0),
) -> list[datetime]:
    """The first `count` due moments of a subscription, as aware UTC datetimes.

    The first is on the start date itself; then one per interval on the anchor day (clamped to short
    months), each at `charge_at` local time in `tz`. The signature is fixed by issue 4.

    Raises ValueError naming the bad argument when `count` < 0, `interval_months` < 1, `tz` is not an
    IANA zone, `start` is not a date or `charge_at` is not a naive time.
    """
    start = _check_start(start)
    count = _check_int("count", count, minimum=0)
    interval = _check_interval(interval_months)
    validate_tz(tz)  # validate even when count == 0, so a bad zone never slips through silently
    charge_at = _check_charge_at(charge_at)
    return [due_instant(start, index, tz=tz, interval_months=interval, charge_at=charge_at) for index in range(count)]


def cycles_in_term(term_months: int, interval_months: int) -> int:
    """How many cycles one term has: 12 for a 12-month monthly plan, 1 for a 12-month yearly plan.

    A term must be a whole number of intervals (a 6-month term cannot be billed yearly); anything else
    is a plan configuration error, reported rather than rounded.
    """
    term = _check_int("term_months", term_months, minimum=1)
    interval = _check_interval(interval_months)
    if term % interval:
        raise ValueError(f"term_months ({term}) must be a whole multiple of interval_months ({interval})")
    return term // interval
