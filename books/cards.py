"""Card facts the books check before charging: is it usable on a given day, and do the card
networks allow another try of it now."""

from __future__ import annotations

import calendar
from datetime import date


def recurring_not_allowed(location_id: str) -> str:
    """Why a location's saved cards are neither shown, saved nor charged: its setting forbids it
    (one sentence for enrollment, deposits, terminals and the card listing)."""
    return f"location {location_id} does not allow Gravity payment for recurring payments"


def card_expired_on(exp_month: int, exp_year: int, day: date) -> bool:
    """A card is good through the last day of its expiry month."""
    last_day = calendar.monthrange(exp_year, exp_month)[1]
    return day > date(exp_year, exp_month, last_day)


# Visa allows at most 15 reattempts of a declined card in 30 days; we apply it to every brand.
REATTEMPTS_IN_30_DAYS = 15
# Mastercard allows at most 10 tries of a card in 24 hours.
MASTERCARD_TRIES_IN_24_HOURS = 10


def network_refusal(brand: str, *, declines_in_30_days: int, tries_in_24_hours: int) -> str | None:
    """Why the card networks forbid another try of this card now, or None. (A decline no issuer
    will ever approve disables the card instead: it is never tried again at all.)"""
    if brand == "MC" and tries_in_24_hours >= MASTERCARD_TRIES_IN_24_HOURS:
        return f"Mastercard allows {MASTERCARD_TRIES_IN_24_HOURS} tries of a card in 24 hours"
    if declines_in_30_days >= REATTEMPTS_IN_30_DAYS:
        return f"the card networks allow {REATTEMPTS_IN_30_DAYS} reattempts of a declined card in 30 days"
    return None
