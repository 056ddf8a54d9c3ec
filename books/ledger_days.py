"""The ledger's daily sums (`ledger_day`): what a balance since the books began reads instead of
every entry.

The table is written only by the ledger itself (a statement trigger on `ledger_entry`, migration
0013), one row per location, account and UTC day for each posting, in the posting's transaction:
the sums cannot drift from the entries, and postings never wait on each other. `compact` folds a
day's rows into one, keeping every sum; `REBUILD` recomputes them from the entries (after a bulk
load that bypassed the trigger). A reader wanting a location's local days takes the whole UTC days
inside them from here and the entries of the UTC days a local midnight cuts through from the ledger
(`operations.ledger_balances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

_DAY_SUMS = (
    "SELECT t.location_id, e.account, CAST(timezone('UTC', t.created_at) AS date),"
    " count(*), COALESCE(sum(e.amount_cents) FILTER (WHERE e.amount_cents > 0), 0),"
    " COALESCE(-sum(e.amount_cents) FILTER (WHERE e.amount_cents < 0), 0)"
    " FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id GROUP BY 1, 2, 3"
)
_COLUMNS = "(location_id, account, day, entries, debit_cents, credit_cents)"

# The keys with more than one row, their rows deleted and put back as one; a concurrent posting's
# row (not yet visible) stays as it is, and a concurrent compaction's rows are skipped once deleted.
_COMPACT = text(
    "WITH split AS (SELECT location_id, account, day FROM ledger_day GROUP BY 1, 2, 3 HAVING count(*) > 1),"
    " gone AS (DELETE FROM ledger_day d USING split s"
    " WHERE (d.location_id, d.account, d.day) = (s.location_id, s.account, s.day) RETURNING d.*)"
    f" INSERT INTO ledger_day {_COLUMNS}"
    " SELECT location_id, account, day, sum(entries), sum(debit_cents), sum(credit_cents) FROM gone GROUP BY 1, 2, 3"
)

#: Recompute every day from the entries, after a bulk load that bypassed the trigger (one transaction).
REBUILD = ("DELETE FROM ledger_day", f"INSERT INTO ledger_day {_COLUMNS} {_DAY_SUMS}")


def compact(session: Session) -> int:
    """Fold each location's, account's and day's rows into one; returns the rows written."""
    result: Any = session.execute(_COMPACT)
    return int(result.rowcount or 0)


_BEFORE = text(
    "SELECT location_id, sum(entries) AS entries, sum(debit_cents) AS debits, sum(credit_cents) AS credits"
    " FROM ledger_day WHERE location_id = ANY(:ids) AND account = :account AND day < :day GROUP BY location_id"
)


@dataclass(frozen=True)
class DaySums:
    """One account of one location over whole UTC days: entries, debits and credits (both positive)."""

    entries: int
    debit_cents: int
    credit_cents: int


def utc_midnight(day: date) -> datetime:
    """The instant UTC `day` begins."""
    return datetime.combine(day, time(0), UTC)


def sums_before(session: Session, location_ids: list[str], account: str, day: date) -> dict[str, DaySums]:
    """Each location's `account` summed over the UTC days before `day`."""
    rows = session.execute(_BEFORE, {"ids": location_ids, "account": account, "day": day}).all() if location_ids else []
    return {row.location_id: DaySums(int(row.entries), int(row.debits), int(row.credits)) for row in rows}
