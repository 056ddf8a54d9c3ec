"""Each ledger account's opening balance, debits, credits and closing balance for a month.

Why from the entries and the ledger's own daily sums, not a stored balance: the ledger is the
record, a figure an accountant can re-add from the journal export is one they can trust, and the
daily sums (`books.ledger_days`) are written by the ledger in each posting's transaction, so a
balance need not re-add every entry since the books began: only the UTC days a location's local
midnight cuts through are dated entry by entry. Balances are debit-positive
(an asset's balance is positive, a liability's or income's negative), as the ledger stores them;
debits and credits are both positive sums. A transaction counts on its location's local day.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, TextClause, text
from sqlmodel import Session

from books.ledger_days import utc_midnight
from models.ledger import Account
from operations.finance_scope import local_day_bounds, locations_in_reach, month_of

COLUMNS = ("period", "location_id", "account", "opening_cents", "debits_cents", "credits_cents", "closing_cents")


@dataclass(frozen=True)
class AccountBalance:
    account: str
    opening_cents: int
    debits_cents: int
    credits_cents: int
    closing_cents: int


@dataclass(frozen=True)
class LedgerBalances:
    period: str
    start: date
    end: date
    location_id: str | None
    accounts: list[AccountBalance]

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "location_id": self.location_id,
            "amounts_in": "cents",
            "accounts": [asdict(a) for a in self.accounts],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for a in self.accounts:
            writer.writerow((self.period, self.location_id or "ALL", a.account, a.opening_cents, a.debits_cents, a.credits_cents, a.closing_cents))
        return out.getvalue()


@dataclass(frozen=True)
class LocalSpan:
    """A location's local days `first`..`last` as UTC: the instants they start and end, and the
    UTC days wholly before, wholly inside, and cut by either end (whose entries the ledger dates)."""

    location_id: str
    starts: datetime
    ends: datetime

    @classmethod
    def of(cls, location_id: str, timezone: str, first: date, last: date) -> LocalSpan:
        return cls(location_id, local_day_bounds(first, timezone)[0], local_day_bounds(last, timezone)[1])

    @property
    def first_whole_day(self) -> date:
        """The first UTC day inside the span (the day `starts` falls in, when it is a UTC midnight)."""
        day = self.starts.astimezone(UTC).date()
        return day if self.starts == utc_midnight(day) else day + timedelta(days=1)

    @property
    def start_day(self) -> date:
        """The UTC day `starts` falls in: days before it are wholly before the span."""
        return self.starts.astimezone(UTC).date()

    @property
    def end_day(self) -> date:
        """The UTC day `ends` falls in: days from `first_whole_day` up to it are wholly inside."""
        return self.ends.astimezone(UTC).date()

    def params(self) -> dict[str, Any]:
        return {
            "location_id": self.location_id,
            "starts": self.starts,
            "ends": self.ends,
            "start_day": self.start_day,
            "first_whole_day": self.first_whole_day,
            "end_day": self.end_day,
            "start_day_at": utc_midnight(self.start_day),
            "first_whole_day_at": utc_midnight(self.first_whole_day),
            "end_day_at": utc_midnight(self.end_day),
        }


def span_arrays(spans: list[LocalSpan]) -> dict[str, list[Any]]:
    """The spans (at least one) as one array per field, for `unnest`: one statement for any number of locations."""
    rows = [span.params() for span in spans]
    return {name: [row[name] for row in rows] for name in rows[0]}


# The spans as a relation: a statement reads `span` after `WITH span AS (SPANS)`.
SPANS = (
    "SELECT * FROM unnest(CAST(:location_id AS text[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),"
    " CAST(:start_day AS date[]), CAST(:first_whole_day AS date[]), CAST(:end_day AS date[]),"
    " CAST(:start_day_at AS timestamptz[]), CAST(:first_whole_day_at AS timestamptz[]), CAST(:end_day_at AS timestamptz[]))"
    " AS span (location_id, starts, ends, start_day, first_whole_day, end_day, start_day_at, first_whole_day_at, end_day_at)"
)


# Whole UTC days from the ledger's daily sums (before the span: opening balance; inside it: debits
# and credits), and the entries of the UTC days a local midnight cuts through, dated to the instant.
_SUMS = (
    "WITH span AS ({spans}),"
    " days AS (SELECT d.account,"
    " sum(d.debit_cents - d.credit_cents) FILTER (WHERE d.day < s.start_day) AS opening,"
    " sum(d.debit_cents) FILTER (WHERE d.day >= s.first_whole_day) AS debits,"
    " sum(d.credit_cents) FILTER (WHERE d.day >= s.first_whole_day) AS credits"
    " FROM span s JOIN ledger_day d ON d.location_id = s.location_id AND d.day < s.end_day GROUP BY d.account),"
    " edges AS (SELECT e.account,"
    " sum(e.amount_cents) FILTER (WHERE t.created_at < s.starts) AS opening,"
    " sum(e.amount_cents) FILTER (WHERE t.created_at >= s.starts AND e.amount_cents > 0) AS debits,"
    " -sum(e.amount_cents) FILTER (WHERE t.created_at >= s.starts AND e.amount_cents < 0) AS credits"
    " FROM ledger_transaction t JOIN span s ON s.location_id = t.location_id JOIN ledger_entry e ON e.transaction_id = t.id"
    " WHERE {edges} GROUP BY e.account)"
    " SELECT account, coalesce(sum(opening), 0) AS opening, coalesce(sum(debits), 0) AS debits, coalesce(sum(credits), 0) AS credits"
    " FROM (SELECT * FROM days UNION ALL SELECT * FROM edges) AS parts GROUP BY account"
)
# One location's two cut days, its own parameters spelled out so the planner sees each index range.
_EDGE = (
    "(t.location_id = :location_{i} AND ((t.created_at >= :start_day_at_{i} AND t.created_at < :first_whole_day_at_{i})"
    " OR (t.created_at >= :end_day_at_{i} AND t.created_at < :ends_{i})))"
)


@lru_cache(maxsize=64)
def _sums(locations: int) -> TextClause:
    """The statement for this many locations (its text depends on the count only)."""
    edges = " OR ".join(_EDGE.format(i=i) for i in range(locations))
    return text(_SUMS.format(spans=SPANS, edges=edges))


def _parameters(spans: list[LocalSpan]) -> dict[str, Any]:
    params: dict[str, Any] = span_arrays(spans)
    for i, span in enumerate(spans):
        one = span.params()
        params.update({f"location_{i}": span.location_id, f"ends_{i}": span.ends})
        params.update({f"{name}_{i}": one[name] for name in ("start_day_at", "first_whole_day_at", "end_day_at")})
    return params


def ledger_balances(engine: Engine, period: str, *, location_id: str | None = None, reach: frozenset[str] | None = None) -> LedgerBalances:
    """Every account of the chart (and any other the ledger holds) for the month `period` (YYYY-MM)."""
    start, end = month_of(period)
    with Session(engine) as session:
        spans = [LocalSpan.of(loc.id, loc.timezone, start, end) for loc in locations_in_reach(session, location_id, reach)]
        rows = session.execute(_sums(len(spans)), _parameters(spans)).all() if spans else []
    sums = {row.account: (int(row.opening), int(row.debits), int(row.credits)) for row in rows}
    accounts = [str(a) for a in Account] + sorted(set(sums) - {str(a) for a in Account})
    balances = []
    for account in accounts:
        opening, debits, credits = sums.get(account, (0, 0, 0))
        balances.append(AccountBalance(account, opening, debits, credits, opening + debits - credits))
    return LedgerBalances(period, start, end, location_id, balances)
