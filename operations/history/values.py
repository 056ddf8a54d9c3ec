"""Small conversions the trail's readers share: one clock zone, JSON-safe payloads, short summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic_core import to_jsonable_python


def utc(moment: datetime | None) -> datetime:
    """`moment` as an aware UTC time (a row with no time sorts first)."""
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_json(value: Any) -> Any:
    """`value` as plain JSON data, whatever contract it is."""
    return to_jsonable_python(value, fallback=str)


def short(value: Any, limit: int = 80) -> str:
    """`value` in one line of at most `limit` characters, empty fields left out."""
    if value is None:
        return ""
    if isinstance(value, (str, int, date)):
        text = str(value)
    else:
        data = as_json(value)
        text = ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], {})) if isinstance(data, dict) else str(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def int_or_none(value: Any) -> int | None:
    """`value` if it is an int (a bool is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
