"""Engine and sessions. One pooled engine per process and database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine
from sqlmodel import Session, create_engine

from models.stamp import stamp_at


def sqlalchemy_url(url: str) -> str:
    """Point a plain postgresql:// URL at the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


@lru_cache(maxsize=8)
def get_engine(url: str, pool_size: int = 10) -> Engine:
    """A pooled engine with `pool_pre_ping`: a connection PostgreSQL cut (restart, failover, idle
    kill) is replaced at checkout instead of failing the step. Measured in the chaos run: without it
    every cut fails an activity attempt, and Temporal's growing retry backoff then delays charges by
    minutes; the ping costs one round trip per checkout."""
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A statement's parameters are names, emails and card references: an error's text (logged,
        # or recorded as an activity failure) says which statement failed, never with what.
        hide_parameters=True,
    )


@contextmanager
def session_scope(engine: Engine, *, at: datetime | None = None) -> Iterator[Session]:
    """One database transaction: committed on success, rolled back on any error. Its rows are
    dated `at` when given (`models.stamp`), else by the database's now()."""
    with Session(engine, expire_on_commit=False) as session:
        stamp_at(session, at)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
