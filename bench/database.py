"""A database of the benchmark's own on the stack's PostgreSQL server (never the configured one)."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from models.migrate import upgrade_to_head


def admin_url(server_url: str) -> str:
    """libpq URL of the server's maintenance database."""
    return make_url(server_url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def fresh_database(server_url: str, name: str) -> str:
    """Drop and recreate database `name` on the server of `server_url`, migrated; returns its URL."""
    with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    return url


def drop_database(server_url: str, name: str) -> None:
    from models.db import get_engine

    get_engine.cache_clear()
    with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
