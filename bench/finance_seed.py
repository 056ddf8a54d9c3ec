"""Seed `billing bench --finance`'s database: a clinic group's three years of books, streamed with COPY.

Every table gets a COPY stream of its own (one connection each, with triggers and foreign-key
checks off, `session_replication_role = replica`), so rows go out in the order `GroupBooks` makes
them; the indexes that back no constraint are dropped first and built again after, and the tables
vacuumed and analyzed, so the timed queries meet a database shaped like one that grew for years.
Because the ledger's balance trigger is off while seeding, `books_balance` checks the books after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.finance_books import COLUMNS, GroupBooks, Row
from books import ledger_days

SERIAL_TABLES = ("invoice_line", "credit_application", "ledger_transaction", "ledger_entry", "outbox_event")

_SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
 WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
"""


def libpq_url(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (psycopg connects with it)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class CopyStreams:
    """One open COPY per table; `write(table, row)` sends a row, `counts` says how many went."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.counts = dict.fromkeys(COLUMNS, 0)
        self._stack = ExitStack()
        self._copies: dict[str, Any] = {}

    def __enter__(self) -> CopyStreams:
        try:
            for table, columns in COLUMNS.items():
                conn = self._stack.enter_context(psycopg.connect(self.dsn))
                conn.execute("SET session_replication_role = replica")
                cursor = self._stack.enter_context(conn.cursor())
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
                self._copies[table] = self._stack.enter_context(cursor.copy(statement))
        except BaseException:
            self._stack.close()
            raise
        return self

    def write(self, table: str, row: Row) -> None:
        self._copies[table].write_row(row)
        self.counts[table] += 1

    def __exit__(self, *exc: object) -> None:
        # Unwinds each table's COPY, cursor and connection: commit on success, rollback on error.
        self._stack.__exit__(*exc)  # type: ignore[arg-type]


def drop_secondary_indexes(dsn: str) -> list[str]:
    """Drop the seeded tables' indexes that back no constraint; returns their definitions."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute(_SECONDARY_INDEXES, (list(COLUMNS),)).fetchall()
        for name, _ in found:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _, definition in found]


def finish(dsn: str, indexes: list[str]) -> None:
    """Build the dropped indexes again, move the serial ids past the seeded ones, sum the ledger's
    months, vacuum and analyze."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        for definition in indexes:
            conn.execute(sql.SQL(definition))  # pg_get_indexdef of an index the seed dropped
        for table in SERIAL_TABLES:
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), GREATEST((SELECT max(id) FROM {}), 1))").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            )
        with conn.transaction():  # the ledger's trigger was off while copying: its daily sums from the entries
            for statement in ledger_days.REBUILD:
                conn.execute(sql.SQL(statement))  # a constant of books.ledger_days
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(map(sql.Identifier, (*COLUMNS, "ledger_day")))))


def seed(url: str, subscriptions: int, *, now: datetime | None = None, seed_value: int = 17, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the group into the (migrated, empty) database at `url`; returns rows per table and seconds."""
    dsn = libpq_url(url)
    started = time.perf_counter()
    indexes = drop_secondary_indexes(dsn)
    with CopyStreams(dsn) as streams:
        GroupBooks(streams.write, subscriptions=subscriptions, now=now or datetime.now(UTC), seed=seed_value).write()
    copied = time.perf_counter()
    say(f"copied {sum(streams.counts.values()):,} rows in {copied - started:.0f} s; building {len(indexes)} indexes, vacuuming")
    finish(dsn, indexes)
    return {
        "subscriptions": subscriptions,
        "rows": streams.counts,
        "total_rows": sum(streams.counts.values()),
        "copy_s": round(copied - started, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def books_balance(url: str) -> dict[str, Any]:
    """Debits and credits of the seeded ledger, and how many transactions do not sum to zero."""
    with psycopg.connect(libpq_url(url)) as conn:
        debits, credits = conn.execute(
            "SELECT COALESCE(sum(amount_cents) FILTER (WHERE amount_cents > 0), 0),"
            " COALESCE(-sum(amount_cents) FILTER (WHERE amount_cents < 0), 0) FROM ledger_entry"
        ).fetchone() or (0, 0)
        row = conn.execute("SELECT count(*) FROM (SELECT 1 FROM ledger_entry GROUP BY transaction_id HAVING sum(amount_cents) <> 0) AS off").fetchone()
    unbalanced = int(row[0]) if row else 0
    return {
        "debits_cents": int(debits),
        "credits_cents": int(credits),
        "unbalanced_transactions": unbalanced,
        "balanced": debits == credits and unbalanced == 0,
    }
