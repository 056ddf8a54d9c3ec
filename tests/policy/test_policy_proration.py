"""Proration and early-cancellation settlement: integer cents, one rounding rule, no drift."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from workflows.calendar import period_for
from workflows.proration import (
    ProrationResult,
    Settlement,
    daily_split_cents,
    early_cancel_settlement,
    elapsed_share_cents,
    prorate_change,
    unused_refund_cents,
)

JAN = {"period_start": date(2026, 1, 1), "period_end": date(2026, 2, 1)}  # 31 days


def test_upgrade_mid_period() -> None:
    # $31.00 -> $62.00 on Jan 17: 15 of 31 days remain.
    result = prorate_change(3100, 6200, change_date=date(2026, 1, 17), policy="prorate", **JAN)
    assert result == ProrationResult(
        policy="prorate",
        credit_cents=1500,
        charge_cents=3000,
        net_cents=1500,
        period_days=31,
        remaining_days=15,
        effective_from=date(2026, 1, 17),
    )


def test_downgrade_gives_a_net_credit() -> None:
    result = prorate_change(6200, 3100, change_date=date(2026, 1, 17), policy="prorate", **JAN)
    assert (result.credit_cents, result.charge_cents, result.net_cents) == (3000, 1500, -1500)


def test_change_on_the_first_day_swaps_whole_prices() -> None:
    result = prorate_change(2999, 4999, change_date=date(2026, 1, 1), policy="prorate", **JAN)
    assert (result.credit_cents, result.charge_cents, result.net_cents) == (2999, 4999, 2000)


def test_change_on_the_last_day() -> None:
    result = prorate_change(3100, 6200, change_date=date(2026, 1, 31), policy="prorate", **JAN)
    assert (result.credit_cents, result.charge_cents, result.remaining_days) == (100, 200, 1)


@pytest.mark.parametrize("policy", ["prorate", "next_cycle"])
def test_change_on_the_next_periods_start_settles_nothing(policy: str) -> None:
    # On a due day before that day's charge the paid period is used up: the next cycle bills the new price.
    result = prorate_change(3100, 6200, change_date=date(2026, 2, 1), policy=policy, **JAN)
    assert result == ProrationResult(
        policy=policy,
        credit_cents=0,
        charge_cents=0,
        net_cents=0,
        period_days=31,
        remaining_days=0,
        effective_from=date(2026, 2, 1),
    )


def test_next_cycle_policy_settles_nothing_now() -> None:
    result = prorate_change(3100, 6200, change_date=date(2026, 1, 17), policy="next_cycle", **JAN)
    assert (result.credit_cents, result.charge_cents, result.net_cents) == (0, 0, 0)
    assert result.effective_from == date(2026, 2, 1)


def test_rounding_rule_half_cent_goes_to_the_elapsed_part() -> None:
    # 1 cent over 2 days, change after day 1: elapsed share 0.5 rounds up to 1, remaining gets 0.
    assert elapsed_share_cents(1, 1, 2) == 1
    assert unused_refund_cents(1, period_start=date(2026, 1, 1), period_end=date(2026, 1, 3), cancel_date=date(2026, 1, 2)) == 0
    # 3 cents over 2 days: 1.5 -> 2 elapsed, 1 remaining.
    assert elapsed_share_cents(3, 1, 2) == 2
    assert elapsed_share_cents(2999, 10, 30) == 1000  # 999.67 -> 1000
    assert elapsed_share_cents(2999, 0, 30) == 0
    assert elapsed_share_cents(2999, 30, 30) == 2999


def test_daily_split_of_a_february() -> None:
    split = daily_split_cents(2999, 28)
    assert sum(split) == 2999
    assert set(split) <= {107, 108}


def test_unused_refund() -> None:
    assert unused_refund_cents(3100, cancel_date=date(2026, 1, 1), **JAN) == 3100
    assert unused_refund_cents(3100, cancel_date=date(2026, 1, 21), **JAN) == 1100
    assert unused_refund_cents(3100, cancel_date=date(2026, 2, 1), **JAN) == 0
    assert unused_refund_cents(0, cancel_date=date(2026, 1, 21), **JAN) == 0


def test_settlement_charge_redeemed() -> None:
    common: dict[str, Any] = {"current_period_paid_cents": 3000, "cancel_date": date(2026, 1, 10), **JAN}
    s = early_cancel_settlement(policy="charge_redeemed", paid_total_cents=9000, redeemed_retail_cents=25000, **common)
    assert (s.kind, s.amount_cents) == ("charge", 16000)
    s = early_cancel_settlement(policy="charge_redeemed", paid_total_cents=9000, redeemed_retail_cents=9000, **common)
    assert (s.kind, s.amount_cents) == ("none", 0)
    s = early_cancel_settlement(policy="charge_redeemed", paid_total_cents=9000, redeemed_retail_cents=100, **common)
    assert (s.kind, s.amount_cents) == ("none", 0)


def test_settlement_refund_unused() -> None:
    s = early_cancel_settlement(
        policy="refund_unused", paid_total_cents=9300, redeemed_retail_cents=50000, current_period_paid_cents=3100, cancel_date=date(2026, 1, 21), **JAN
    )
    assert (s.kind, s.amount_cents) == ("refund", 1100)
    s = early_cancel_settlement(
        policy="refund_unused", paid_total_cents=9300, redeemed_retail_cents=0, current_period_paid_cents=3100, cancel_date=date(2026, 2, 1), **JAN
    )
    assert s == Settlement("none", 0, s.reason)


def test_settlement_none() -> None:
    s = early_cancel_settlement(
        policy="none", paid_total_cents=9300, redeemed_retail_cents=50000, current_period_paid_cents=3100, cancel_date=date(2026, 1, 21), **JAN
    )
    assert (s.kind, s.amount_cents) == ("none", 0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: prorate_change(-1, 100, change_date=date(2026, 1, 5), policy="prorate", **JAN), "old_price_cents"),
        (
            lambda: prorate_change(
                100,
                1.5,  # type: ignore[arg-type]  # a float price, which must be refused
                change_date=date(2026, 1, 5),
                policy="prorate",
                **JAN,
            ),
            "new_price_cents",
        ),
        (lambda: prorate_change(100, 200, change_date=date(2026, 1, 5), policy="maybe", **JAN), "policy"),
        (lambda: prorate_change(100, 200, change_date=date(2026, 2, 2), policy="prorate", **JAN), "change_date"),
        (lambda: prorate_change(100, 200, change_date=date(2025, 12, 31), policy="prorate", **JAN), "change_date"),
        (
            lambda: prorate_change(100, 200, period_start=date(2026, 2, 1), period_end=date(2026, 2, 1), change_date=date(2026, 2, 1), policy="prorate"),
            "period_end",
        ),
        (lambda: unused_refund_cents(100, cancel_date=date(2026, 3, 1), **JAN), "cancel_date"),
        (lambda: unused_refund_cents(True, cancel_date=date(2026, 1, 3), **JAN), "paid_cents"),
        (
            lambda: early_cancel_settlement(
                policy="refund", paid_total_cents=0, redeemed_retail_cents=0, current_period_paid_cents=0, cancel_date=date(2026, 1, 3), **JAN
            ),
            "policy",
        ),
        (
            lambda: early_cancel_settlement(
                policy="none", paid_total_cents=0, redeemed_retail_cents=-5, current_period_paid_cents=0, cancel_date=date(2026, 1, 3), **JAN
            ),
            "redeemed_retail_cents",
        ),
    ],
)
def test_bad_input_is_refused(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


# --- properties ----------------------------------------------------------------------------------

prices = st.integers(0, 10_000_000)
periods = st.builds(
    lambda start, index, interval: period_for(start, index, interval_months=interval),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.integers(0, 24),
    st.sampled_from([1, 12]),
)


@settings(max_examples=300, deadline=None)
@given(price=prices, period=periods, data=st.data())
def test_credit_and_used_never_drift(price: int, period: tuple[date, date], data: st.DataObject) -> None:
    start, end = period
    days = (end - start).days
    elapsed = data.draw(st.integers(0, days))  # the end too: a change on the next period's start
    change = start + timedelta(days=elapsed)
    new_price = data.draw(prices)
    result = prorate_change(price, new_price, period_start=start, period_end=end, change_date=change, policy="prorate")
    used = elapsed_share_cents(price, elapsed, days)
    assert used + result.credit_cents == price
    assert 0 <= result.credit_cents <= price and 0 <= result.charge_cents <= new_price
    assert result.net_cents == result.charge_cents - result.credit_cents
    # Within half a cent of the exact value, ties going to the elapsed part.
    exact_credit = Fraction(price * (days - elapsed), days)
    assert abs(result.credit_cents - exact_credit) <= Fraction(1, 2)
    # The same days from the daily split add up to the same credit.
    split = daily_split_cents(price, days) if days <= 400 else None
    if split is not None:
        assert sum(split) == price
        assert sum(split[elapsed:]) == result.credit_cents
        assert all(part >= 0 for part in split)


@settings(max_examples=200, deadline=None)
@given(price=prices, days=st.integers(1, 400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_any_partition_of_a_period_sums_to_the_price(price: int, days: int, cuts: list[int]) -> None:
    points = sorted({0, days, *(c for c in cuts if c <= days)})
    parts = [elapsed_share_cents(price, b, days) - elapsed_share_cents(price, a, days) for a, b in itertools.pairwise(points)]
    assert sum(parts) == price
    assert all(p >= 0 for p in parts)


@settings(max_examples=300, deadline=None)
@given(paid=prices, period=periods, data=st.data())
def test_refund_never_exceeds_paid_and_shrinks_over_time(paid: int, period: tuple[date, date], data: st.DataObject) -> None:
    start, end = period
    days = (end - start).days
    a, b = sorted(data.draw(st.lists(st.integers(0, days), min_size=2, max_size=2)))
    early = unused_refund_cents(paid, period_start=start, period_end=end, cancel_date=start + timedelta(days=a))
    late = unused_refund_cents(paid, period_start=start, period_end=end, cancel_date=start + timedelta(days=b))
    assert 0 <= late <= early <= paid


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(["charge_redeemed", "refund_unused", "none"]),
    paid_total=prices,
    redeemed=prices,
    current=prices,
    period=periods,
    data=st.data(),
)
def test_settlement_is_never_negative(policy: str, paid_total: int, redeemed: int, current: int, period: tuple[date, date], data: st.DataObject) -> None:
    start, end = period
    cancel = start + timedelta(days=data.draw(st.integers(0, (end - start).days)))
    s = early_cancel_settlement(
        policy=policy,
        paid_total_cents=paid_total,
        redeemed_retail_cents=redeemed,
        current_period_paid_cents=current,
        period_start=start,
        period_end=end,
        cancel_date=cancel,
    )
    assert s.amount_cents >= 0
    assert (s.kind == "none") == (s.amount_cents == 0)
    if s.kind == "refund":
        assert s.amount_cents <= current
    if s.kind == "charge":
        assert s.amount_cents == redeemed - paid_total
