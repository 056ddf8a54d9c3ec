"""The CLI's check of free text a person types (reasons, invoice lines, ids that are stored): never a
card number, with the same rule and words as the API (`foundation.card_numbers`)."""

from __future__ import annotations

import typer

from cli.errors import fail
from foundation.card_numbers import LOOKS_LIKE_A_CARD_NUMBER, holds_card_number


def no_card_number(param: typer.CallbackParam, value: str | list[str] | None) -> str | list[str] | None:
    """A typer callback: the value unchanged, or one red line naming the option (never the value)."""
    values = value if isinstance(value, list) else [value] if value else []
    if any(holds_card_number(item) for item in values):
        fail(f"{param.opts[0] if param.opts else param.name}: {LOOKS_LIKE_A_CARD_NUMBER}")
    return value
