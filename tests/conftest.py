"""Session-wide real servers for the tests: PostgreSQL (a fresh migrated database per run), and,
in the suites that need them, the Gravity sandbox and the Temporal dev server with time skipping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from models.db import get_engine
from tests.support.database import fresh_database, truncate_all


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The engine, over empty tables."""
    truncate_all(engine)
    yield engine
