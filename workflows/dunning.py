"""Dunning: what to do after a cycle's charge is declined.

Why this module exists: dunning is data (design principle 7). A plan (or location) carries a retry
schedule as JSON; this module validates it once, at the edge, and then answers the one question the
subscription workflow asks after every declined attempt: *retry when, wait for a new card, or give
up?* It is pure policy (standard library + pendulum, no I/O, no clock) because workflow code calls
it and Temporal replays it.

The rules:

* A schedule is a list of retry offsets in **whole days after the failed due date** (e.g.
  ``(3, 7, 11, 15)``: retry 3, 7, 11 and 15 days after the cycle fell due) and what happens when they
  run out (``on_exhausted``: ``"suspend"``, the default, or ``"cancel"``).
* Offsets are strictly increasing positive ints, at most ``MAX_RETRIES`` of them, and the last one is
  shorter than the shortest possible billing period of the plan's interval (28 days for monthly), so
  one cycle's dunning is always over before the next cycle falls due.
* ``MAX_RETRIES`` is conservative on purpose. Visa allows at most 15 reattempts of a declined
  transaction in 30 days (and none after a "do not reattempt" decline); Mastercard and others have
  comparable excessive-retry rules with fees. 8 retries, at most one per day (strictly increasing whole
  days), stays well inside all of them.
* A **hard** decline (expired card, lost or stolen, invalid account) stops retrying: the workflow
  waits for a new card (a card update triggers an immediate retry; that is the workflow's business).
  A **soft** decline, or a decline nobody classified (``None``), follows the schedule: retrying a
  misclassified hard decline costs one more decline within the network caps, while never retrying a
  misclassified soft one loses a payment.
* A retry lands at the **same local time of day** as the due instant, whole calendar days later in the
  location's zone, computed with pendulum so a daylight-saving change between the two never shifts the
  hour (a due instant at 09:00 EST retries at 09:00 EDT, one hour earlier in UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import pendulum

from workflows.calendar import local_instant, period_for, validate_tz

__all__ = [
    "CANCEL",
    "DEFAULT_SCHEDULE",
    "EXHAUSTED",
    "HARD",
    "MAX_RETRIES",
    "RETRY_AT",
    "SOFT",
    "SUSPEND",
    "WAIT_FOR_NEW_CARD",
    "DunningSchedule",
    "DunningStep",
    "card_wait_over",
    "from_plan_json",
    "min_period_days",
    "next_step",
    "retry_instant",
    "to_plan_json",
    "validate_schedule",
]

#: At most this many retries per failed cycle. Visa's rule is 15 reattempts in 30 days; 8 keeps a
#: wide margin for every network (and for the immediate retry a card update triggers).
MAX_RETRIES = 8

SUSPEND = "suspend"
CANCEL = "cancel"
_ON_EXHAUSTED = (SUSPEND, CANCEL)

SOFT = "soft"
HARD = "hard"
_DECLINE_CLASSES = (SOFT, HARD)

# DunningStep.kind values.
RETRY_AT = "retry_at"
WAIT_FOR_NEW_CARD = "wait_for_new_card"
EXHAUSTED = "exhausted"

_JSON_KEYS = ("retry_offsets_days", "on_exhausted")


@dataclass(frozen=True)
class DunningSchedule:
    """Retry offsets in whole days after the failed due date, and what happens when they run out.

    A frozen dataclass of plain types so it can cross the Temporal boundary; a list given for the
    offsets is stored as a tuple (immutable, hashable). Construction does not validate against an
    interval (it does not know one): call `validate_schedule` at the edge.
    """

    retry_offsets_days: tuple[int, ...] = (3, 7, 11, 15)
    on_exhausted: str = SUSPEND

    def __post_init__(self) -> None:
        if not isinstance(self.retry_offsets_days, tuple):
            object.__setattr__(self, "retry_offsets_days", tuple(self.retry_offsets_days))

    @property
    def max_retries(self) -> int:
        """How many retries follow the first, failed attempt of a cycle."""
        return len(self.retry_offsets_days)


#: Four retries over 15 days: inside the "about four retries within 14-21 days" the design asks
#: for, and over before the shortest month ends.
DEFAULT_SCHEDULE = DunningSchedule(retry_offsets_days=(3, 7, 11, 15), on_exhausted=SUSPEND)


@dataclass(frozen=True)
class DunningStep:
    """The decision after a declined attempt.

    kind is one of:
    * ``RETRY_AT``: charge again at `retry_at` (UTC); `retry_number` is 1 for the first retry;
    * ``WAIT_FOR_NEW_CARD``: hard decline, no retry until the card changes;
    * ``EXHAUSTED``: the schedule ran out; `on_exhausted` says whether to suspend or cancel.
    """

    kind: str
    retry_at: datetime | None = None
    retry_number: int | None = None
    on_exhausted: str | None = None
    reason: str = ""


def min_period_days(interval_months: int) -> int:
    """The fewest days a billing period of `interval_months` months can have, anchor clamping included.

    28 for monthly (Jan 31 -> Feb 28, or Feb 1 -> Mar 1), 365 for yearly. Computed with the calendar
    itself rather than tabulated, so it holds for any interval: every start day of a four-year leap
    cycle, and the periods after it (where clamped anchors return), is measured. The Gregorian
    century rule only removes leap days, which the common years already cover.
    """
    if isinstance(interval_months, bool) or not isinstance(interval_months, int) or interval_months < 1:
        raise ValueError(f"interval_months must be an int >= 1, got {interval_months!r}")
    return _min_period_days(interval_months)


@lru_cache(maxsize=64)
def _min_period_days(interval_months: int) -> int:
    shortest: int | None = None
    for serial in range(2001 * 12, 2005 * 12):
        year, month0 = divmod(serial, 12)
        for day in (1, 28, 29, 30, 31):
            try:
                start = date(year, month0 + 1, day)
            except ValueError:
                continue  # no such start date (Feb 30, Apr 31, ...)
            for index in range(13):
                p_start, p_end = period_for(start, index, interval_months=interval_months)
                length = (p_end - p_start).days
                shortest = length if shortest is None else min(shortest, length)
    assert shortest is not None
    return shortest


def validate_schedule(schedule: DunningSchedule, *, interval_months: int) -> DunningSchedule:
    """Return `schedule` if a plan billed every `interval_months` months may use it, else ValueError.

    Checked: offsets are strictly increasing positive ints; no more than `MAX_RETRIES` of them; the
    last one is shorter than the shortest period of the interval (for monthly: < 28 days), so dunning
    for one cycle ends before the next cycle falls due; `on_exhausted` is "suspend" or "cancel".
    An empty schedule is allowed: the first soft decline then exhausts it at once.
    """
    if not isinstance(schedule, DunningSchedule):
        raise ValueError(f"schedule must be a DunningSchedule, got {type(schedule).__name__}")
    offsets = schedule.retry_offsets_days
    for position, offset in enumerate(offsets):
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise ValueError(f"dunning retry offset #{position + 1} must be a whole number of days, got {offset!r}")
        if offset < 1:
            raise ValueError(f"dunning retry offset #{position + 1} must be at least 1 day after the due date, got {offset}")
        if position and offset <= offsets[position - 1]:
            raise ValueError(f"dunning retry offsets must be strictly increasing, got {list(offsets)} ({offset} after {offsets[position - 1]})")
    if len(offsets) > MAX_RETRIES:
        raise ValueError(f"dunning schedule has {len(offsets)} retries; card networks limit reattempts, this engine allows at most {MAX_RETRIES}")
    shortest = min_period_days(interval_months)
    if offsets and offsets[-1] >= shortest:
        raise ValueError(
            f"last dunning retry is {offsets[-1]} days after the due date; it must be shorter than "
            f"the billing interval ({interval_months} month(s), at least {shortest} days), "
            f"so use at most {shortest - 1}"
        )
    if schedule.on_exhausted not in _ON_EXHAUSTED:
        raise ValueError(f"dunning on_exhausted must be one of {', '.join(_ON_EXHAUSTED)}, got {schedule.on_exhausted!r}")
    return schedule


def from_plan_json(data: Mapping[str, Any] | None, *, interval_months: int = 1) -> DunningSchedule:
    """The validated schedule stored on a plan (``health_plan.dunning`` JSON); None -> the default.

    The JSON shape is ``{"retry_offsets_days": [3, 7, 11, 15], "on_exhausted": "suspend"}``; either key
    may be left out (it then takes the default's value). Unknown keys are refused rather than ignored,
    so a typo ("retry_days") cannot silently leave a plan on the default. `interval_months` defaults to
    monthly, the strictest common case.
    """
    if data is None:
        return validate_schedule(DEFAULT_SCHEDULE, interval_months=interval_months)
    if not isinstance(data, Mapping):
        raise ValueError(f"dunning must be a JSON object, got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in _JSON_KEYS)
    if unknown:
        raise ValueError(f"unknown dunning key(s) {', '.join(unknown)}; allowed: {', '.join(_JSON_KEYS)}")
    offsets: Any = data.get("retry_offsets_days", DEFAULT_SCHEDULE.retry_offsets_days)
    if isinstance(offsets, (str, bytes)) or not isinstance(offsets, Sequence):
        raise ValueError(f"dunning retry_offsets_days must be a list of days, got {offsets!r}")
    on_exhausted: Any = data.get("on_exhausted", DEFAULT_SCHEDULE.on_exhausted)
    schedule = DunningSchedule(retry_offsets_days=tuple(offsets), on_exhausted=on_exhausted)
    return validate_schedule(schedule, interval_months=interval_months)


def to_plan_json(schedule: DunningSchedule) -> dict[str, Any]:
    """The JSON a plan stores for `schedule` (the inverse of `from_plan_json`)."""
    return {
        "retry_offsets_days": list(schedule.retry_offsets_days),
        "on_exhausted": schedule.on_exhausted,
    }


def _check_aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value


def retry_instant(due_at: datetime, offset_days: int, *, tz: str) -> datetime:
    """`offset_days` local calendar days after `due_at`, at the same local wall time, as aware UTC.

    Whole days are added in the location's zone (not 24-hour steps in UTC), so a DST change in
    between keeps the local hour. If that wall time does not exist on the target day (the due time
    sat in a spring-forward gap's hour), it resolves forward, like the calendar does.
    """
    due_at = _check_aware("due_at", due_at)
    if isinstance(offset_days, bool) or not isinstance(offset_days, int) or offset_days < 0:
        raise ValueError(f"offset_days must be an int >= 0, got {offset_days!r}")
    zone = validate_tz(tz)
    local = pendulum.instance(due_at.astimezone(UTC)).in_timezone(zone)
    target_day = date(local.year, local.month, local.day) + timedelta(days=offset_days)
    wall = time(local.hour, local.minute, local.second, local.microsecond)
    # Same DST rules as the billing calendar (gap -> forward, overlap -> first occurrence).
    return local_instant(target_day, wall, tz=tz)


def next_step(
    schedule: DunningSchedule,
    *,
    due_at: datetime,
    attempts_made: int,
    last_decline_class: str | None,
    tz: str,
    now: datetime | None = None,
) -> DunningStep:
    """Decide what follows a declined attempt of one cycle.

    `attempts_made` counts every charge attempt of this cycle so far, the first one at the due
    instant included (so 1 after the first decline; retry n is attempt n + 1). Retry n is scheduled
    `schedule.retry_offsets_days[n - 1]` local days after `due_at`, at the due instant's local time.

    `now` is optional: when given (the workflow passes ``workflow.now()``), scheduled retries whose
    moment is not after `now` are skipped instead of firing back to back (that happens after an
    off-schedule attempt, such as the immediate retry on a card update, ran late in the schedule).
    Skipped retries are not made up later, so the schedule's length stays the cap on retries.
    """
    if not isinstance(schedule, DunningSchedule):
        raise ValueError(f"schedule must be a DunningSchedule, got {type(schedule).__name__}")
    due_at = _check_aware("due_at", due_at)
    if isinstance(attempts_made, bool) or not isinstance(attempts_made, int) or attempts_made < 1:
        raise ValueError(f"attempts_made must be an int >= 1 (the declined attempt counts), got {attempts_made!r}")
    if last_decline_class is not None and last_decline_class not in _DECLINE_CLASSES:
        raise ValueError(f"last_decline_class must be one of {', '.join(_DECLINE_CLASSES)} or None, got {last_decline_class!r}")
    if now is not None:
        now = _check_aware("now", now)

    if last_decline_class == HARD:
        return DunningStep(
            kind=WAIT_FOR_NEW_CARD,
            reason="hard decline: retrying the same card cannot succeed; waiting for a new card",
        )

    offsets = schedule.retry_offsets_days
    for retry_number in range(attempts_made, len(offsets) + 1):
        moment = retry_instant(due_at, offsets[retry_number - 1], tz=tz)
        if now is None or moment > now:
            return DunningStep(
                kind=RETRY_AT,
                retry_at=moment,
                retry_number=retry_number,
                reason=f"soft decline: retry {retry_number} of {len(offsets)}, {offsets[retry_number - 1]} days after the due date",
            )
    return DunningStep(
        kind=EXHAUSTED,
        on_exhausted=schedule.on_exhausted,
        reason=f"dunning schedule exhausted after {attempts_made} attempt(s): {schedule.on_exhausted}",
    )


def card_wait_over(cycles_waiting: int, allowed_cycles: int) -> bool:
    """Whether a subscription has billed long enough without a usable card (hard-declined, disabled or
    missing) to be suspended: `cycles_waiting` cycles' invoices wait for a new card, and a plan allows
    `allowed_cycles` (at least 1). Billing on would only pile up invoices no card can pay."""
    if isinstance(allowed_cycles, bool) or not isinstance(allowed_cycles, int) or allowed_cycles < 1:
        raise ValueError(f"allowed_cycles must be an int >= 1, got {allowed_cycles!r}")
    if isinstance(cycles_waiting, bool) or not isinstance(cycles_waiting, int) or cycles_waiting < 0:
        raise ValueError(f"cycles_waiting must be an int >= 0, got {cycles_waiting!r}")
    return cycles_waiting >= allowed_cycles


def attempts_before_untried_retry(attempt: int, *, same_attempt_again: bool, one_off: bool) -> int:
    """How many attempts count as made after attempt `attempt` sent nothing.

    While another collector holds the invoice (or the networks forbid a try) the same attempt is
    made again later, so it does not count. A one-off invoice's first attempt belongs to the command
    that issued it, with a key of its own, so its retries count from 2 whatever happened to it."""
    made = attempt - 1 if same_attempt_again else attempt
    return max(made, 1) if one_off else made
