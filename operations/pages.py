"""Keyset pages: the cursor codec and the one way every list walks its rows.

Why keyset and not OFFSET: a page is found through the sort index from the last row seen, so the
thousandth page costs what the first does, and rows written meanwhile neither repeat nor vanish.
A list's order is its sort key then the row id, so rows that tie on the key still have one place.
The cursor is opaque to callers: base64url of the list's name and the last row's key, in JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 1000
#: What a cursor may hold: base64url without padding (the API states it as the parameter's pattern).
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]+$"


class FilterRefused(ValueError):
    """A list's parameter cannot be used (an unknown status, a bad cursor); `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """A list's order: one sort expression (newest first, or A to Z), then the row id as tiebreak."""

    list_name: str
    key: Any
    row_id: Any
    descending: bool
    #: The key's value of a row as JSON can carry it (a datetime as ISO 8601), and back.
    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def timestamp_key(list_name: str, key: Any, row_id: Any) -> SortKey:
    """Newest first by a timestamp column, then by id."""
    return SortKey(list_name, key, row_id, True, lambda value: value.isoformat(), datetime.fromisoformat)


def text_key(list_name: str, key: Any, row_id: Any) -> SortKey:
    """A to Z by a text expression, then by id."""
    return SortKey(list_name, key, row_id, False, str, str)


def check_limit(limit: int) -> int:
    """The page size, or a refusal naming `limit`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterRefused("limit", f"must be 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(list_name: str, key: Any, row_id: str) -> str:
    """The opaque cursor after a row whose sort key is `key` (already JSON-ready)."""
    raw = json.dumps({"l": list_name, "k": [key, row_id]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: SortKey, cursor: str) -> tuple[Any, str]:
    """The (key, id) a cursor of this list points after; a refusal naming `cursor` for anything else."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("l") != sort.list_name:
            raise ValueError("not this list's")
        key, row_id = data["k"]
        if not isinstance(row_id, str) or "\x00" in row_id or "\\u0000" in json.dumps(key):
            raise ValueError("bad id or key")  # PostgreSQL text cannot hold NUL: refuse it here, not with a 500
        return sort.load(key), row_id
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise FilterRefused("cursor", f"not a cursor of this list: pass the next_cursor a page of {sort.list_name} answered") from None


def after(sort: SortKey, cursor: str | None) -> ColumnElement[bool] | None:
    """The condition of rows after the cursor in the list's order (None on the first page)."""
    if cursor is None:
        return None
    key, row_id = decode_cursor(sort, cursor)
    row = tuple_(sort.key, sort.row_id)
    return row < tuple_(key, row_id) if sort.descending else row > tuple_(key, row_id)


def ordered(sort: SortKey) -> Sequence[Any]:
    """The ORDER BY of the list: the key, then the id, in one direction (so one index serves it)."""
    if sort.descending:
        return (sort.key.desc(), sort.row_id.desc())
    return (sort.key, sort.row_id)


def fetch_page(session: Session, query: SelectOfScalar[T], sort: SortKey, *, cursor: str | None, limit: int, key_of: Callable[[T], Any]) -> Page[T]:
    """One page of `query` in the list's order, from after `cursor`; `key_of` reads a row's sort key."""
    limit = check_limit(limit)
    condition = after(sort, cursor)
    if condition is not None:
        query = query.where(condition)
    rows = list(session.exec(query.order_by(*ordered(sort)).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], encode_cursor(sort.list_name, sort.dump(key_of(last)), last.id))  # type: ignore[attr-defined]
