"""Reading an emergepay request body: its envelope, text fields and amounts, refused with a 400 as Gravity does."""

from __future__ import annotations

import re
from typing import Any

from foundation.money import MoneyError, from_dollar_string
from gravity.sandbox.errors import ApiError

_STRICT_DOLLARS = re.compile(r"^[0-9]{1,12}\.[0-9]{2}$")
MMYY = re.compile(r"^(0[1-9]|1[0-2])[0-9]{2}$")


def envelope(body: Any, name: str) -> dict[str, Any]:
    """The object under `name` (`transactionData`, `accountData`) that holds the request's fields."""
    data = body.get(name) if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(400, f'body must be {{"{name}": {{...}}}}')
    return data


def optional_text(data: dict[str, Any], name: str) -> str | None:
    """A string field, None when it is missing or empty."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def required_text(data: dict[str, Any], name: str) -> str:
    """A string field that must be there and not empty."""
    value = optional_text(data, name)
    if value is None:
        raise ApiError(400, f"{name} is required")
    return value


def dollars(data: dict[str, Any], name: str = "amount") -> int:
    """A positive amount written as a string of dollars with two decimals, in cents."""
    value = data.get(name)
    if not isinstance(value, str) or not _STRICT_DOLLARS.match(value):
        raise ApiError(400, f'{name} must be a string of dollars with two decimals, like "25.00"')
    try:
        cents = from_dollar_string(value)
    except MoneyError:
        raise ApiError(400, f"{name} is out of range") from None
    if cents <= 0:
        raise ApiError(400, f"{name} must be greater than zero")
    return cents
