"""The cents <-> dollar-string boundary (foundation/money.py) is exact both ways, for every amount up
to $1,000,000.00, and junk that merely looks like a number is refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings, strategies as st

from foundation.money import MoneyError, from_dollar_string, to_dollar_string

MILLION_DOLLARS = 100_000_000  # cents
_CANONICAL = re.compile(r"^[0-9]+\.[0-9]{2}$")


@settings(max_examples=3000, deadline=None)
@given(st.integers(min_value=0, max_value=MILLION_DOLLARS))
@example(0)
@example(1)
@example(99)
@example(100)
@example(101)
@example(MILLION_DOLLARS - 1)
@example(MILLION_DOLLARS)
def test_cents_round_trip_exactly(cents: int) -> None:
    text = to_dollar_string(cents)
    assert _CANONICAL.match(text)
    assert from_dollar_string(text) == cents
    whole, fraction = text.split(".")
    assert int(whole) * 100 + int(fraction) == cents  # the digits say the same amount


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=0, max_value=MILLION_DOLLARS // 100), st.integers(min_value=0, max_value=99))
def test_dollar_strings_round_trip_exactly(dollars: int, cents: int) -> None:
    text = f"{dollars}.{cents:02d}"
    assert to_dollar_string(from_dollar_string(text)) == text


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        ".",
        "1.",
        ".5",
        "1.001",
        "1.2.3",
        "1e3",
        "1E3",
        "1e-2",
        "-1.00",
        "+1.00",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1,000.00",
        "$1.00",
        "0x10",
        "1_000.00",
        "1 000.00",
        "½",
        "1.0.",
        "1.-1",
        "١.٠٠",  # noqa: RUF001 - digits of another script are what this refuses
    ],
)
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(MoneyError):
        from_dollar_string(junk)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_reprs_that_are_not_dollar_amounts_are_refused(value: float) -> None:
    text = repr(value)
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,2})?", text):
        return  # e.g. "25.5" is a fine dollar amount
    with pytest.raises(MoneyError):
        from_dollar_string(text)


@given(st.one_of(st.floats(), st.integers(), st.none(), st.booleans()))
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(MoneyError):
        from_dollar_string(value)  # type: ignore[arg-type]  # not a string, which must be refused


@given(st.integers(max_value=-1) | st.integers(min_value=100_000_000_01))
def test_out_of_range_cents_are_refused(cents: int) -> None:
    with pytest.raises(MoneyError):
        to_dollar_string(cents)
