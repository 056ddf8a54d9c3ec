"""A location's ceiling on any one amount (`max_invoice_cents`), as a refusal every command shares.

Why here and not in the API alone: the CLI changes a plan's price through the same operation, and
a slip of dollars for cents must be refused there in the same words.
"""

from __future__ import annotations

from models.clinic import Location
from operations.refusals import Refusal


def check_amount(location: Location | None, field: str, cents: int | None) -> None:
    """Refuse (naming `field`) an amount above the location's `max_invoice_cents`."""
    if location is not None and cents is not None and cents > location.max_invoice_cents:
        raise Refusal(field, f"{cents} cents is above location {location.id}'s max_invoice_cents ({location.max_invoice_cents})")
