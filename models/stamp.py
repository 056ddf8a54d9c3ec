"""The date a database transaction gives the rows it writes (created, updated, settled): the
workflow's time when an activity passes one (so the demo's simulated year lands in its own months), else the database's now()."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.orm import Session

from foundation.statuses import SETTLED_PAYMENT_STATUSES, SETTLED_REFUND_STATUSES

_KEY = "stamp_at"
_STAMPED = ("created_at", "updated_at")
#: Per money table, the statuses in which its row is final: `settled_at` is written on reaching one.
FINAL = {"payment": SETTLED_PAYMENT_STATUSES, "refund": SETTLED_REFUND_STATUSES}


def stamp_at(session: Session, at: datetime | None) -> None:
    """Date every row this session writes `at` (None: the database's now(), the column default)."""
    session.info[_KEY] = at


def stamp_of(session: Session) -> datetime | None:
    """The time this session's rows are dated, or None for the database's now()."""
    at: datetime | None = session.info.get(_KEY)
    return at


@event.listens_for(Session, "before_flush")
def _date_rows(session: Session, _context: Any, _instances: Any) -> None:
    """One rule for every ORM row: new rows are created and every written row updated `at`."""
    at = stamp_of(session)
    if at is None:
        return
    for row in session.new:
        for name in _STAMPED:
            if hasattr(row, name) and getattr(row, name) is None:
                setattr(row, name, at)
    for row in session.dirty:
        if hasattr(row, "updated_at"):
            row.updated_at = at


@event.listens_for(Session, "before_flush")
def _settle_rows(session: Session, _context: Any, _instances: Any) -> None:
    """A payment or refund is settled the first time it is written final, so the reconciliation
    checks it on that day (whichever of the books' paths made it final, and never again later)."""
    at = stamp_of(session)
    for row in (*session.new, *session.dirty):
        final = FINAL.get(getattr(row, "__tablename__", ""))
        if final is None or row.status not in final or row.settled_at is not None:
            continue
        # Undated: the transaction's now(), as the database dates created_at, written in the same statement.
        row.settled_at = at if at is not None else func.now()
