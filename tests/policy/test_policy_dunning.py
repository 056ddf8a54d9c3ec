"""Dunning: schedule validation, the plan JSON, and the retry/wait/exhausted decision."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from workflows.calendar import due_instant
from workflows.dunning import (
    DEFAULT_SCHEDULE,
    EXHAUSTED,
    MAX_RETRIES,
    RETRY_AT,
    WAIT_FOR_NEW_CARD,
    DunningSchedule,
    from_plan_json,
    min_period_days,
    next_step,
    retry_instant,
    to_plan_json,
    validate_schedule,
)

NY = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_default_schedule_is_about_four_retries_within_14_to_21_days() -> None:
    offsets = DEFAULT_SCHEDULE.retry_offsets_days
    assert 3 <= len(offsets) <= 5
    assert 14 <= offsets[-1] <= 21
    assert DEFAULT_SCHEDULE.on_exhausted == "suspend"
    assert validate_schedule(DEFAULT_SCHEDULE, interval_months=1) is DEFAULT_SCHEDULE
    assert validate_schedule(DEFAULT_SCHEDULE, interval_months=12) is DEFAULT_SCHEDULE


def test_min_period_days() -> None:
    assert min_period_days(1) == 28
    assert min_period_days(12) == 365
    with pytest.raises(ValueError, match="interval_months"):
        min_period_days(0)


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ((3, 3), "strictly increasing"),
        ((7, 3), "strictly increasing"),
        ((0, 3), "at least 1 day"),
        ((-1,), "at least 1 day"),
        ((1.5, 3), "whole number"),
        ((True, 3), "whole number"),
        (tuple(range(1, MAX_RETRIES + 2)), "at most 8"),
        ((3, 7, 28), "shorter than the billing interval"),
    ],
)
def test_validate_refuses_bad_schedules(offsets: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_schedule(DunningSchedule(retry_offsets_days=offsets), interval_months=1)


def test_validate_refuses_unknown_on_exhausted() -> None:
    with pytest.raises(ValueError, match="on_exhausted"):
        validate_schedule(DunningSchedule(on_exhausted="delete"), interval_months=1)


def test_limits() -> None:
    validate_schedule(DunningSchedule(retry_offsets_days=(27,)), interval_months=1)
    validate_schedule(DunningSchedule(retry_offsets_days=tuple(range(1, MAX_RETRIES + 1))), interval_months=1)
    validate_schedule(DunningSchedule(retry_offsets_days=(3, 30, 90, 364)), interval_months=12)
    validate_schedule(DunningSchedule(retry_offsets_days=()), interval_months=1)
    with pytest.raises(ValueError, match="364"):
        validate_schedule(DunningSchedule(retry_offsets_days=(3, 365)), interval_months=12)


def test_from_plan_json() -> None:
    assert from_plan_json(None) == DEFAULT_SCHEDULE
    assert from_plan_json({}) == DEFAULT_SCHEDULE
    schedule = from_plan_json({"retry_offsets_days": [2, 5, 9], "on_exhausted": "cancel"})
    assert schedule == DunningSchedule((2, 5, 9), "cancel")
    assert from_plan_json(to_plan_json(schedule)) == schedule
    assert to_plan_json(schedule) == {"retry_offsets_days": [2, 5, 9], "on_exhausted": "cancel"}
    assert from_plan_json({"retry_offsets_days": [30, 60]}, interval_months=12).retry_offsets_days == (30, 60)
    with pytest.raises(ValueError, match="retry_days"):
        from_plan_json({"retry_days": [1, 2]})
    with pytest.raises(ValueError, match="list of days"):
        from_plan_json({"retry_offsets_days": "3,7"})
    with pytest.raises(ValueError, match="shorter than the billing interval"):
        from_plan_json({"retry_offsets_days": [30, 60]})
    with pytest.raises(ValueError, match="JSON object"):
        from_plan_json([3, 7])  # type: ignore[arg-type]  # the old plain-list shape, which must be refused


def test_list_offsets_become_a_tuple() -> None:
    schedule = DunningSchedule(retry_offsets_days=[3, 7])  # type: ignore[arg-type]  # a list, which it turns into a tuple
    assert schedule.retry_offsets_days == (3, 7)
    hash(schedule)


def test_soft_declines_walk_the_schedule_then_exhaust() -> None:
    due = due_instant(date(2026, 1, 10), 0, tz=NY)  # 09:00 EST = 14:00 UTC
    steps = [next_step(DEFAULT_SCHEDULE, due_at=due, attempts_made=n, last_decline_class="soft", tz=NY) for n in range(1, 6)]
    assert [s.kind for s in steps] == [RETRY_AT] * 4 + [EXHAUSTED]
    assert [s.retry_at for s in steps[:4]] == [
        utc(2026, 1, 13, 14),
        utc(2026, 1, 17, 14),
        utc(2026, 1, 21, 14),
        utc(2026, 1, 25, 14),
    ]
    assert [s.retry_number for s in steps[:4]] == [1, 2, 3, 4]
    assert steps[4].on_exhausted == "suspend"


def test_unclassified_decline_is_retried_like_a_soft_one() -> None:
    due = utc(2026, 1, 10, 14)
    step = next_step(DEFAULT_SCHEDULE, due_at=due, attempts_made=1, last_decline_class=None, tz=NY)
    assert step.kind == RETRY_AT


def test_hard_decline_waits_for_a_new_card() -> None:
    due = utc(2026, 1, 10, 14)
    for attempts in (1, 3, 5):
        step = next_step(DEFAULT_SCHEDULE, due_at=due, attempts_made=attempts, last_decline_class="hard", tz=NY)
        assert step.kind == WAIT_FOR_NEW_CARD
        assert step.retry_at is None


def test_cancel_on_exhausted() -> None:
    schedule = DunningSchedule((2,), "cancel")
    step = next_step(schedule, due_at=utc(2026, 1, 10, 14), attempts_made=2, last_decline_class="soft", tz=NY)
    assert (step.kind, step.on_exhausted) == (EXHAUSTED, "cancel")


def test_retry_keeps_the_local_hour_across_spring_forward() -> None:
    # Due 2026-03-01 09:00 EST (14:00 UTC); retries after March 8 are 09:00 EDT (13:00 UTC).
    due = due_instant(date(2026, 3, 1), 0, tz=NY)
    assert due == utc(2026, 3, 1, 14)
    retries = [next_step(DEFAULT_SCHEDULE, due_at=due, attempts_made=n, last_decline_class="soft", tz=NY).retry_at for n in range(1, 5)]
    assert retries == [utc(2026, 3, 4, 14), utc(2026, 3, 8, 13), utc(2026, 3, 12, 13), utc(2026, 3, 16, 13)]


def test_retry_keeps_the_local_hour_across_fall_back() -> None:
    due = due_instant(date(2026, 10, 25), 0, tz=NY)  # EDT
    assert retry_instant(due, 7, tz=NY) == utc(2026, 11, 1, 14)  # 09:00 EST
    assert retry_instant(due, 7, tz=NY).astimezone(ZoneInfo(NY)).time() == time(9, 0)


def test_retry_accepts_non_stdlib_utc_tzinfo() -> None:
    # The pydantic data converter gives datetimes back with its own UTC tzinfo.
    due = utc(2026, 1, 10, 14).astimezone(timezone(timedelta(0)))
    assert retry_instant(due, 3, tz=NY) == utc(2026, 1, 13, 14)


def test_now_skips_retries_already_in_the_past() -> None:
    due = utc(2026, 1, 10, 14)
    # A card-update attempt on day 12 (attempts_made=3) declined softly: day 11 is gone, day 15 next.
    step = next_step(
        DEFAULT_SCHEDULE,
        due_at=due,
        attempts_made=3,
        last_decline_class="soft",
        tz=NY,
        now=utc(2026, 1, 22, 12),
    )
    assert (step.kind, step.retry_number, step.retry_at) == (RETRY_AT, 4, utc(2026, 1, 25, 14))
    step = next_step(
        DEFAULT_SCHEDULE,
        due_at=due,
        attempts_made=2,
        last_decline_class="soft",
        tz=NY,
        now=utc(2026, 1, 26),
    )
    assert step.kind == EXHAUSTED


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"attempts_made": 0}, "attempts_made"),
        ({"attempts_made": True}, "attempts_made"),
        ({"last_decline_class": "maybe"}, "last_decline_class"),
        ({"due_at": datetime(2026, 1, 10, 14)}, "due_at"),
        ({"tz": "Nowhere/Else"}, "tz"),
        ({"now": datetime(2026, 1, 10)}, "now"),
    ],
)
def test_next_step_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    args: dict[str, Any] = {"due_at": utc(2026, 1, 10, 14), "attempts_made": 1, "last_decline_class": "soft", "tz": NY}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        next_step(DEFAULT_SCHEDULE, **args)


# --- properties ----------------------------------------------------------------------------------

offset_lists = st.lists(st.integers(-3, 40), max_size=MAX_RETRIES + 3)


@settings(max_examples=300, deadline=None)
@given(offsets=offset_lists, interval=st.sampled_from([1, 12]))
def test_validation_property(offsets: list[int], interval: int) -> None:
    limit = 28 if interval == 1 else 365
    valid = (
        all(o >= 1 for o in offsets)
        and all(a < b for a, b in itertools.pairwise(offsets))
        and len(offsets) <= MAX_RETRIES
        and (not offsets or offsets[-1] < limit)
    )
    schedule = DunningSchedule(retry_offsets_days=tuple(offsets))
    if valid:
        assert validate_schedule(schedule, interval_months=interval) == schedule
    else:
        with pytest.raises(ValueError):
            validate_schedule(schedule, interval_months=interval)


valid_schedules = st.lists(st.integers(1, 27), min_size=1, max_size=MAX_RETRIES, unique=True).map(
    lambda xs: DunningSchedule(retry_offsets_days=tuple(sorted(xs)))
)


@settings(max_examples=100, deadline=None)
@given(
    schedule=valid_schedules,
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    tz=st.sampled_from(["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]),
)
def test_retries_increase_keep_local_time_and_end_before_next_cycle(schedule: DunningSchedule, start: date, tz: str) -> None:
    validate_schedule(schedule, interval_months=1)
    due = due_instant(start, 0, tz=tz)
    next_due = due_instant(start, 1, tz=tz)
    moments = []
    for attempts in range(1, schedule.max_retries + 2):
        step = next_step(schedule, due_at=due, attempts_made=attempts, last_decline_class="soft", tz=tz)
        if attempts <= schedule.max_retries:
            assert step.kind == RETRY_AT and step.retry_at is not None
            moments.append(step.retry_at)
        else:
            assert step.kind == EXHAUSTED
    zone = ZoneInfo(tz)
    assert all(due < a < b for a, b in itertools.pairwise(moments)) and due < moments[0]
    assert moments[-1] < next_due
    for offset, moment in zip(schedule.retry_offsets_days, moments, strict=True):
        local = moment.astimezone(zone)
        assert local.time() == time(9, 0)
        assert local.date() == due.astimezone(zone).date() + timedelta(days=offset)


def test_a_subscription_is_suspended_once_its_allowed_cycles_wait_for_a_card() -> None:
    from workflows.dunning import card_wait_over

    assert [card_wait_over(waiting, 2) for waiting in range(4)] == [False, False, True, True]
    assert card_wait_over(1, 1)
    with pytest.raises(ValueError, match="allowed_cycles"):
        card_wait_over(1, 0)
    with pytest.raises(ValueError, match="cycles_waiting"):
        card_wait_over(-1, 2)


def test_plan_terms_from_before_the_card_wait_decode_with_the_default() -> None:
    from foundation.contracts import PlanTerms
    from foundation.converter import data_converter

    old = {
        "plan_id": "p",
        "price_cents": 100,
        "enrollment_fee_cents": 0,
        "interval_months": 1,
        "term_months": 12,
        "auto_renew": False,
        "dunning_offsets_days": [3, 7],
        "dunning_on_exhausted": "suspend",
        "proration_policy": "prorate",
        "cancellation_policy": "none",
    }
    payload = data_converter.payload_converter.to_payloads([old])
    (terms,) = data_converter.payload_converter.from_payloads(payload, [PlanTerms])
    assert terms.card_wait_cycles == 2


def test_a_one_off_invoice_whose_first_try_sent_nothing_is_retried_from_attempt_two() -> None:
    """Chaos seed 7: a proration's first try found its invoice held (being cancelled), the workflow
    asked attempt 1 again, and attempt 1 of a one-off invoice has no retry key: every try failed."""
    from workflows.dunning import attempts_before_untried_retry

    assert attempts_before_untried_retry(1, same_attempt_again=True, one_off=True) == 1  # the next try is 2
    assert attempts_before_untried_retry(1, same_attempt_again=True, one_off=False) == 0  # a cycle tries 1 again
    assert attempts_before_untried_retry(3, same_attempt_again=True, one_off=True) == 2
    assert attempts_before_untried_retry(2, same_attempt_again=False, one_off=False) == 2
