"""Alembic environment: the URL comes from `config.attributes["url"]` (set by `models.migrate`)
or from the settings, so no credential ever sits in alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table on SQLModel.metadata
from models.db import get_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return url
    from foundation.settings import get_settings

    url = get_settings().database_url
    if not url:
        raise RuntimeError("no database URL: set DATABASE_URL or run through `billing migrate`")
    return url


def run_migrations_online() -> None:
    engine = get_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
