"""Card facts activities need before charging: is it usable on a given day."""

from __future__ import annotations

import calendar
from datetime import date


def card_expired_on(exp_month: int, exp_year: int, day: date) -> bool:
    """A card is good through the last day of its expiry month."""
    last_day = calendar.monthrange(exp_year, exp_month)[1]
    return day > date(exp_year, exp_month, last_day)
