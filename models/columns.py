"""Column helpers so every table states money and time the same way.

Money is BIGINT cents with a CHECK that it is not negative; time is `timestamptz` (UTC inside the
database, the clinic's zone only when shown or computed with pendulum).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Text


def utcnow() -> datetime:
    """The wall clock in UTC, for created/updated stamps written by activities (never workflows)."""
    return datetime.now(UTC)


def cents(name: str, *, nullable: bool = False, default: int | None = None) -> Any:
    """A non-negative integer-cents column named `name`.

    Alembic's autogenerate does not render column-level CHECKs, so each migration that adds such a
    column creates `ck_<table>_<column>_nonneg` itself (see `NONNEGATIVE_CENTS` in 0001).
    """
    return Column(
        name,
        BigInteger,
        CheckConstraint(f"{name} >= 0"),
        nullable=nullable,
        server_default=None if default is None else str(default),
    )


def tz(name: str, *, nullable: bool = False, now_default: bool = False) -> Any:
    """A timestamptz column; `now_default` lets the database stamp it."""
    from sqlalchemy import func

    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if now_default else None,
    )


def fk(name: str, target: str, *, nullable: bool = False, index: bool = True) -> Any:
    """A text foreign key, restricted on delete: money history is never cascaded away."""
    return Column(name, Text, ForeignKey(target, ondelete="RESTRICT"), nullable=nullable, index=index)
