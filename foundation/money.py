"""Money is integer cents, USD, everywhere inside the engine.

Gravity speaks dollar strings with two decimals ("25.00"). The conversion lives here and only here,
and is exact: it works on the digits, never on floats.
"""

from __future__ import annotations

import re

#: The ceiling on any amount a request names ($100,000), from the API or the CLI: far above a clinic's
#: bill, so a dollars-for-cents slip is refused; each location may set a lower `max_invoice_cents`.
MAX_CENTS = 10_000_000
#: What the conversion to and from Gravity's dollar strings takes at most (one hundred million dollars).
MAX_CONVERTIBLE_CENTS = 100_000_000_00
_DOLLARS = re.compile(r"^([0-9]{1,12})(?:\.([0-9]{1,2}))?$")


class MoneyError(ValueError):
    """A money value that cannot be a USD amount (negative, too many decimals, not a number)."""


def to_dollar_string(cents: int) -> str:
    """Cents to Gravity's dollar string: 2500 -> "25.00", 5 -> "0.05"."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise MoneyError(f"amount must be whole cents (int), got {type(cents).__name__}")
    if cents < 0:
        raise MoneyError(f"amount must not be negative, got {cents} cents")
    if cents > MAX_CONVERTIBLE_CENTS:
        raise MoneyError(f"amount {cents} cents is above the limit of {MAX_CONVERTIBLE_CENTS} cents")
    return f"{cents // 100}.{cents % 100:02d}"


def from_dollar_string(text: str) -> int:
    """Gravity's dollar string to cents: "25.00" -> 2500, "25.5" -> 2550, "25" -> 2500."""
    match = _DOLLARS.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise MoneyError(f"not a dollar amount with at most two decimals: {text!r}")
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    cents = int(whole) * 100 + int(fraction)
    if cents > MAX_CONVERTIBLE_CENTS:
        raise MoneyError(f"amount {text!r} is above the limit of {MAX_CONVERTIBLE_CENTS} cents")
    return cents


def from_optional_dollar_string(text: str | None) -> int | None:
    """Like `from_dollar_string`, but Gravity's "" (or a missing value) is None, not zero."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None
    return from_dollar_string(text)


def format_usd(cents: int) -> str:
    """For people: 123456 -> "$1,234.56", -500 -> "-$5.00"."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{rest:02d}"
