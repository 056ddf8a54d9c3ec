"""A location's own ceilings on what the API takes: `max_invoice_cents` for any one amount (a counter
invoice's total, a payment, a deposit, a refund, a plan's price) and `max_invoice_lines`.

Why per location: a clinic that never bills above a few thousand dollars wants a slip of dollars for
cents refused, while a specialty hospital bills more; the schema's ceilings (`api.fields`) bound
every location. A request for an unknown location is left to the route, which names it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from api.errors import from_refusal, refused
from models.clinic import Client, Location
from operations import limits
from operations.refusals import Refusal


def location_of_client(session: Session, client_id: str) -> Location | None:
    client = session.get(Client, client_id)
    return None if client is None else session.get(Location, client.location_id)


def check_amount(location: Location | None, field: str, cents: int | None) -> None:
    """Refuse (422 naming `field`) an amount above the location's `max_invoice_cents`."""
    try:
        limits.check_amount(location, field, cents)
    except Refusal as error:
        raise from_refusal(error) from None


def check_invoice(location: Location | None, amounts: Sequence[int], field: str = "lines") -> None:
    """Refuse an invoice with more lines than `max_invoice_lines`, or a line or total above `max_invoice_cents`."""
    if location is None:
        return
    if len(amounts) > location.max_invoice_lines:
        raise refused(field, f"{len(amounts)} lines is more than location {location.id}'s max_invoice_lines ({location.max_invoice_lines})")
    for index, cents in enumerate(amounts):
        check_amount(location, f"{field}.{index}.amount_cents", cents)
    total = sum(amounts)
    if total > location.max_invoice_cents:
        raise refused(field, f"the invoice total {total} cents is above location {location.id}'s max_invoice_cents ({location.max_invoice_cents})")
