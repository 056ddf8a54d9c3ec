"""Amounts as people type them at the counter: dollars ("45", "45.00", "$1,045.50"), turned into cents once."""

from __future__ import annotations

from foundation.money import MoneyError, from_dollar_string


def dollars_to_cents(text: str) -> int:
    """ "$1,045.50" -> 104550; raises MoneyError for anything that is not a dollar amount with at most two decimals."""
    cleaned = text.strip().removeprefix("$").replace(",", "")
    return from_dollar_string(cleaned)


def amount_in_cents(dollars: str | None, cents: int | None) -> int | None:
    """The amount given as --amount (dollars) or --amount-cents; both at once is a mistake."""
    if dollars is not None and cents is not None:
        raise MoneyError("give --amount (dollars) or --amount-cents, not both")
    if dollars is None:
        return cents
    try:
        return dollars_to_cents(dollars)
    except MoneyError:
        raise MoneyError(f"--amount: {dollars!r} is not a dollar amount like 45.00") from None
