"""The billing calendar: anchor clamping, leap days, DST, yearly plans, and properties over a century."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from workflows.calendar import (
    cycle_date,
    cycles_in_term,
    due_instant,
    due_instants,
    local_instant,
    period_for,
    validate_tz,
)

NY = "America/New_York"
US_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
    "America/Boise",
    "America/Detroit",
    "America/Indiana/Indianapolis",
    "America/Puerto_Rico",
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_dates(instants: list[datetime], tz: str) -> list[date]:
    zone = ZoneInfo(tz)
    return [instant.astimezone(zone).date() for instant in instants]


def days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


# --- examples from issue 4 ------------------------------------------------------------------------


def test_anchor_31_clamps_and_returns_to_anchor() -> None:
    instants = due_instants(date(2026, 1, 31), 5, tz=NY)
    assert local_dates(instants, NY) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    # 09:00 local: EST (UTC-5) in winter, EDT (UTC-4) from March 8.
    assert instants == [
        utc(2026, 1, 31, 14),
        utc(2026, 2, 28, 14),
        utc(2026, 3, 31, 13),
        utc(2026, 4, 30, 13),
        utc(2026, 5, 31, 13),
    ]


def test_anchor_31_in_a_leap_year_uses_feb_29() -> None:
    assert local_dates(due_instants(date(2024, 1, 31), 3, tz=NY), NY) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]


def test_instants_are_plain_utc_datetimes() -> None:
    for instant in due_instants(date(2026, 1, 31), 3, tz=NY):
        assert type(instant) is datetime
        assert instant.tzinfo is UTC


def test_anchor_on_feb_29_monthly_across_a_leap_year() -> None:
    dates = local_dates(due_instants(date(2024, 2, 29), 13, tz=NY), NY)
    assert dates[0] == date(2024, 2, 29)
    assert dates[1] == date(2024, 3, 29)  # back to the anchor 29, not stuck on a clamped day
    assert dates[11] == date(2025, 1, 29)
    assert dates[12] == date(2025, 2, 28)  # 2025 has no Feb 29


def test_anchor_on_feb_29_yearly() -> None:
    instants = due_instants(date(2024, 2, 29), 5, tz="America/Chicago", interval_months=12)
    assert local_dates(instants, "America/Chicago") == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert all(i.astimezone(ZoneInfo("America/Chicago")).time() == time(9, 0) for i in instants)


def test_yearly_interval() -> None:
    instants = due_instants(date(2026, 6, 15), 3, tz="America/Los_Angeles", interval_months=12)
    assert instants == [utc(2026, 6, 15, 16), utc(2027, 6, 15, 16), utc(2028, 6, 15, 16)]


def test_first_cycle_is_on_the_start_date() -> None:
    assert local_dates(due_instants(date(2026, 7, 4), 1, tz=NY), NY) == [date(2026, 7, 4)]
    assert due_instants(date(2026, 7, 4), 0, tz=NY) == []


# --- DST week in America/New_York ---------------------------------------------------------------


def test_spring_forward_nonexistent_time_resolves_forward() -> None:
    # 2026-03-08 02:30 does not exist in New York (02:00 EST -> 03:00 EDT): it becomes 03:30 EDT.
    instant = due_instant(date(2026, 3, 8), 0, tz=NY, charge_at=time(2, 30))
    assert instant == utc(2026, 3, 8, 7, 30)
    assert instant.astimezone(ZoneInfo(NY)).time() == time(3, 30)


def test_fall_back_ambiguous_time_picks_the_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York; the first one is 01:30 EDT = 05:30 UTC.
    instant = due_instant(date(2026, 11, 1), 0, tz=NY, charge_at=time(1, 30))
    assert instant == utc(2026, 11, 1, 5, 30)


def test_fall_back_at_0230_is_not_ambiguous() -> None:
    # 02:30 on 2026-11-01 exists once (after the repeated 01:00-02:00 hour): 02:30 EST.
    assert due_instant(date(2026, 11, 1), 0, tz=NY, charge_at=time(2, 30)) == utc(2026, 11, 1, 7, 30)


def test_dst_week_daily_at_0230_never_skips_or_doubles_a_day() -> None:
    # Daily "cycles" are not a billing interval, but the local-instant rule must give one instant per
    # local date across both transitions, each on its own date.
    for first in (date(2026, 3, 5), date(2026, 10, 29)):
        days = [first + timedelta(days=n) for n in range(7)]
        instants = [local_instant(day, time(2, 30), tz=NY) for day in days]
        assert instants == sorted(set(instants))
        assert local_dates(instants, NY) == days


def test_same_local_hour_across_dst_utc_offset_changes() -> None:
    # Anchor 8th at 09:00: Feb 8 is EST (14:00 UTC), Mar 8 is the spring-forward day itself (EDT,
    # 13:00 UTC), Nov 8 is EST again after the Nov 1 fall-back.
    instants = due_instants(date(2026, 2, 8), 10, tz=NY)
    zone = ZoneInfo(NY)
    assert all(i.astimezone(zone).time() == time(9, 0) for i in instants)
    assert instants[0] == utc(2026, 2, 8, 14)
    assert instants[1] == utc(2026, 3, 8, 13)
    assert instants[8] == utc(2026, 10, 8, 13)
    assert instants[9] == utc(2026, 11, 8, 14)


def test_due_on_fall_back_day_at_0900() -> None:
    assert due_instant(date(2026, 11, 1), 0, tz=NY) == utc(2026, 11, 1, 14)


def test_24_monthly_cycles_never_skip_or_double_a_local_date() -> None:
    for start in (date(2025, 11, 1), date(2026, 3, 8), date(2026, 1, 31), date(2025, 10, 30)):
        for charge_at in (time(0, 0), time(1, 30), time(2, 30), time(9, 0), time(23, 59)):
            instants = due_instants(start, 24, tz=NY, charge_at=charge_at)
            dates = local_dates(instants, NY)
            assert instants == sorted(set(instants))
            assert len({(d.year, d.month) for d in dates}) == 24
            assert dates == [cycle_date(start, n) for n in range(24)]


# --- helpers -------------------------------------------------------------------------------------


def test_period_for_is_end_exclusive_and_tiles() -> None:
    assert period_for(date(2026, 1, 31), 0, interval_months=1) == (date(2026, 1, 31), date(2026, 2, 28))
    assert period_for(date(2026, 1, 31), 1, interval_months=1) == (date(2026, 2, 28), date(2026, 3, 31))
    assert period_for(date(2024, 2, 29), 0, interval_months=12) == (date(2024, 2, 29), date(2025, 2, 28))
    previous_end = None
    for index in range(30):
        start, end = period_for(date(2026, 1, 30), index, interval_months=1)
        assert start < end
        assert previous_end is None or start == previous_end
        previous_end = end


def test_cycles_in_term() -> None:
    assert cycles_in_term(12, 1) == 12
    assert cycles_in_term(12, 12) == 1
    assert cycles_in_term(24, 12) == 2
    with pytest.raises(ValueError, match="term_months"):
        cycles_in_term(6, 12)
    with pytest.raises(ValueError, match="term_months"):
        cycles_in_term(0, 1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"count": -1}, "count"),
        ({"count": 1.5}, "count"),
        ({"count": True}, "count"),
        ({"interval_months": 0}, "interval_months"),
        ({"interval_months": "1"}, "interval_months"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": ""}, "tz"),
        ({"tz": "+05:00"}, "tz"),
        ({"tz": None}, "tz"),
        ({"charge_at": "09:00"}, "charge_at"),
        ({"charge_at": time(9, 0, tzinfo=UTC)}, "charge_at"),
        ({"start": datetime(2026, 1, 1, 9)}, "start"),
        ({"start": "2026-01-01"}, "start"),
    ],
)
def test_due_instants_rejects_bad_arguments_naming_them(kwargs: dict, name: str) -> None:
    args: dict[str, Any] = {"start": date(2026, 1, 1), "count": 3, "tz": NY, **kwargs}
    start, count = args.pop("start"), args.pop("count")
    with pytest.raises(ValueError, match=name):
        due_instants(start, count, **args)


def test_bad_zone_is_refused_even_for_zero_cycles() -> None:
    with pytest.raises(ValueError, match="tz"):
        due_instants(date(2026, 1, 1), 0, tz="Not/AZone")


def test_deterministic() -> None:
    a = due_instants(date(2026, 1, 31), 24, tz=NY, charge_at=time(2, 30))
    b = due_instants(date(2026, 1, 31), 24, tz=NY, charge_at=time(2, 30))
    assert a == b


# --- properties ----------------------------------------------------------------------------------

starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
zones = st.sampled_from(US_ZONES)
charge_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]), st.sampled_from([0, 30]))


def _zoneinfo_oracle(day: date, charge_at: time, tz: str) -> datetime:
    """Independent reference: PEP 495 fold=0 with the stdlib's zoneinfo (gap -> forward, overlap ->
    first), which is exactly the rule the calendar documents."""
    return datetime.combine(day, charge_at, tzinfo=ZoneInfo(tz)).astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(start=starts, tz=zones, charge_at=charge_times)
def test_monthly_property(start: date, tz: str, charge_at: time) -> None:
    count = 24
    instants = due_instants(start, count, tz=tz, charge_at=charge_at)
    zone = ZoneInfo(tz)
    assert len(instants) == count
    assert all(a < b for a, b in itertools.pairwise(instants))
    serial0 = start.year * 12 + start.month - 1
    for index, instant in enumerate(instants):
        assert instant.tzinfo is UTC
        local = instant.astimezone(zone)
        year, month0 = divmod(serial0 + index, 12)
        assert (local.year, local.month) == (year, month0 + 1)  # one per month, none skipped
        assert local.day == min(start.day, days_in_month(year, month0 + 1))
        wall = local.time().replace(fold=0)
        if wall != charge_at:
            # Only in a spring-forward gap, pushed forward by the gap (one hour in US zones).
            assert datetime.combine(local.date(), charge_at) + timedelta(hours=1) == datetime.combine(local.date(), wall)
            roundtrip = datetime.combine(local.date(), charge_at, tzinfo=zone)
            assert roundtrip.astimezone(UTC).astimezone(zone).time() != charge_at
        assert instant == _zoneinfo_oracle(local.date(), charge_at, tz)


@settings(max_examples=60, deadline=None)
@given(start=starts, tz=zones, charge_at=charge_times)
def test_yearly_property(start: date, tz: str, charge_at: time) -> None:
    instants = due_instants(start, 5, tz=tz, interval_months=12, charge_at=charge_at)
    zone = ZoneInfo(tz)
    assert all(a < b for a, b in itertools.pairwise(instants))
    for index, instant in enumerate(instants):
        local = instant.astimezone(zone)
        assert (local.year, local.month) == (start.year + index, start.month)
        assert local.day == min(start.day, days_in_month(start.year + index, start.month))


@settings(max_examples=100, deadline=None)
@given(start=starts, index=st.integers(0, 300), interval=st.sampled_from([1, 12]))
def test_cycle_from_index_equals_due_instants(start: date, index: int, interval: int) -> None:
    # Computing a single cycle by index agrees with the list (no drift from stepping).
    if start.year * 12 + start.month - 1 + (index + 1) * interval >= 10000 * 12:
        return
    assert due_instant(start, index, tz=NY, interval_months=interval) == due_instants(start, index + 1, tz=NY, interval_months=interval)[-1]
    period_start, period_end = period_for(start, index, interval_months=interval)
    assert period_start == cycle_date(start, index, interval)
    assert period_end == cycle_date(start, index + 1, interval)


def test_charge_time_from_minutes() -> None:
    from workflows.calendar import charge_time_from_minutes

    assert charge_time_from_minutes(540) == time(9, 0)
    assert charge_time_from_minutes(0) == time(0, 0)
    assert charge_time_from_minutes(1439) == time(23, 59)
    bad: Any
    for bad in (-1, 1440, True, 9.5):
        with pytest.raises(ValueError, match="charge_at_minutes"):
            charge_time_from_minutes(bad)


def test_a_zone_is_loaded_once_and_a_bad_name_still_refused_every_time() -> None:
    """`validate_tz` caches zones (a worker computes due dates constantly); errors are not cached."""
    assert validate_tz("America/Denver") is validate_tz("America/Denver")
    for _ in range(2):
        with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
            validate_tz("Mars/Olympus_Mons")
