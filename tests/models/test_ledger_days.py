"""The ledger's daily sums: kept by the ledger itself, folded without loss, and read by the ledger
balances and the report's deferred revenue with the very figures the entries alone give.

Postings are backdated by inserting the transaction with its `created_at` (the ledger takes the
server's clock otherwise), across time zones on both sides of the date line and of month ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session

from books import ledger_days
from books.ledger import post
from models.db import session_scope
from models.ledger import Account
from operations.ledger_balances import ledger_balances
from operations.reports import finance_report
from tests.support.clinic import make_clinic

_POST_AT = text(
    "WITH posted AS (INSERT INTO ledger_transaction (reference, kind, memo, location_id, created_at)"
    " VALUES (:reference, :kind, '', :location_id, :at) RETURNING id)"
    " INSERT INTO ledger_entry (transaction_id, account, amount_cents)"
    " SELECT posted.id, lines.account, lines.amount FROM posted"
    " CROSS JOIN unnest(CAST(:accounts AS text[]), CAST(:amounts AS bigint[])) AS lines (account, amount)"
)

# What the balances were before the daily sums: every entry up to the period's end, re-added.
_FROM_ENTRIES = text(
    "WITH dated AS ("
    " SELECT e.account, e.amount_cents, CAST(timezone(l.timezone, t.created_at) AS date) AS day"
    " FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id JOIN location l ON l.id = t.location_id"
    " WHERE t.location_id = ANY(:ids))"
    " SELECT account,"
    " coalesce(sum(amount_cents) FILTER (WHERE day < :start), 0) AS opening,"
    " coalesce(sum(amount_cents) FILTER (WHERE day >= :start AND amount_cents > 0), 0) AS debits,"
    " coalesce(-sum(amount_cents) FILTER (WHERE day >= :start AND amount_cents < 0), 0) AS credits"
    " FROM dated WHERE day <= :end GROUP BY account"
)
_DEFERRED_FROM_ENTRIES = text(
    "SELECT count(*), coalesce(-sum(e.amount_cents), 0) FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id"
    " JOIN location l ON l.id = t.location_id"
    " WHERE t.location_id = :id AND e.account = 'deferred_revenue' AND CAST(timezone(l.timezone, t.created_at) AS date) <= :end"
)
MONTHS = [(2025, month) for month in range(1, 13)] + [(2026, month) for month in range(1, 4)]
# Just before and after UTC month ends, and Honolulu's (10:00 UTC) and Tokyo's (15:00 UTC) midnights.
INSTANTS = [
    datetime(2025, 4, 30, 14, 30, tzinfo=UTC),
    datetime(2025, 4, 30, 15, 30, tzinfo=UTC),
    datetime(2025, 5, 1, 9, 30, tzinfo=UTC),
    datetime(2025, 5, 1, 10, 30, tzinfo=UTC),
    datetime(2025, 5, 31, 9, 59, tzinfo=UTC),
    datetime(2025, 5, 31, 14, 59, tzinfo=UTC),
    datetime(2025, 1, 15, 12, tzinfo=UTC),
    datetime(2025, 3, 31, 23, 30, tzinfo=UTC),
    datetime(2025, 4, 1, 0, 30, tzinfo=UTC),
    datetime(2025, 6, 30, 20, tzinfo=UTC),
    datetime(2025, 7, 1, 9, tzinfo=UTC),
    datetime(2025, 11, 30, 23, 59, tzinfo=UTC),
    datetime(2025, 12, 31, 11, tzinfo=UTC),
    datetime(2026, 1, 31, 23, tzinfo=UTC),
    datetime(2026, 2, 1, 1, tzinfo=UTC),
]


def _post_at(session: Session, location_id: str, at: datetime, reference: str, entries: list[tuple[Account, int]]) -> None:
    accounts = [str(account) for account, _ in entries]
    session.execute(
        _POST_AT, {"reference": reference, "kind": "test", "location_id": location_id, "at": at, "accounts": accounts, "amounts": [a for _, a in entries]}
    )


def _days(session: Session) -> dict[tuple[str, str, date], tuple[int, int, int, int]]:
    rows = session.execute(
        text("SELECT location_id, account, day, count(*), sum(entries), sum(debit_cents), sum(credit_cents) FROM ledger_day GROUP BY 1, 2, 3")
    )
    return {(r[0], r[1], r[2]): (int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows}


def _books(db: Engine) -> list[str]:
    """Two locations (Honolulu, Tokyo) with invoices billed to deferred revenue, recognized, and paid."""
    ids = [make_clinic(db, timezone=zone).location_id for zone in ("Pacific/Honolulu", "Asia/Tokyo")]
    with session_scope(db) as session:
        for n, at in enumerate(INSTANTS):
            for loc in ids:
                cents = 1_000 + 37 * n
                _post_at(session, loc, at, f"bill:{loc}:{n}", [(Account.RECEIVABLE, cents), (Account.DEFERRED_REVENUE, -cents)])
                _post_at(session, loc, at, f"earn:{loc}:{n}", [(Account.DEFERRED_REVENUE, cents // 3), (Account.PLAN_REVENUE, -(cents // 3))])
                _post_at(session, loc, at, f"pay:{loc}:{n}", [(Account.GATEWAY_CLEARING, cents - 1), (Account.RECEIVABLE, -(cents - 1))])
    return ids


def test_each_posting_adds_its_days_sums_in_its_own_transaction(db: Engine) -> None:
    loc = make_clinic(db).location_id
    with session_scope(db) as session:
        post(session, reference="r1", kind="k", location_id=loc, entries=[(Account.RECEIVABLE, 500), (Account.PLAN_REVENUE, -500)])
        post(session, reference="r1", kind="k", location_id=loc, entries=[(Account.RECEIVABLE, 500), (Account.PLAN_REVENUE, -500)])  # already posted
    with session_scope(db) as session:
        post(session, reference="r2", kind="k", location_id=loc, entries=[(Account.RECEIVABLE, 200), (Account.PLAN_REVENUE, -200)])
        month = session.execute(text("SELECT CAST(timezone('UTC', now()) AS date)")).scalar_one()
        assert _days(session) == {(loc, "accounts_receivable", month): (2, 2, 700, 0), (loc, "plan_revenue", month): (2, 2, 0, 700)}
    with session_scope(db) as session:
        assert ledger_days.compact(session) == 2
    with Session(db) as session:
        assert _days(session) == {(loc, "accounts_receivable", month): (1, 2, 700, 0), (loc, "plan_revenue", month): (1, 2, 0, 700)}


def test_ledger_balances_equal_the_entries_alone_in_every_month_and_zone(db: Engine) -> None:
    ids = _books(db)
    with session_scope(db) as session:
        assert ledger_days.compact(session) > 0
    for year, month in MONTHS:
        period = f"{year}-{month:02d}"
        for scope in ([ids[0]], [ids[1]], ids):
            balances = ledger_balances(db, period, location_id=scope[0] if len(scope) == 1 else None)
            with Session(db) as session:
                start, end = balances.start, balances.end
                rows = session.execute(_FROM_ENTRIES, {"ids": scope, "start": start, "end": end}).all()
            expected = {r.account: (int(r.opening), int(r.debits), int(r.credits)) for r in rows}
            got = {a.account: (a.opening_cents, a.debits_cents, a.credits_cents) for a in balances.accounts if a.account in expected}
            assert got == expected, (period, scope)
            assert all(a.opening_cents == a.debits_cents == a.credits_cents == 0 for a in balances.accounts if a.account not in expected)


def test_the_reports_deferred_revenue_held_equals_the_entries_alone(db: Engine) -> None:
    ids = _books(db)
    for year, month in MONTHS:
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1).replace(day=1)
        end = date.fromordinal(end.toordinal() - 1)
        report = finance_report(db, start, end)
        for figures in report.locations:
            with Session(db) as session:
                count, cents = session.execute(_DEFERRED_FROM_ENTRIES, {"id": figures.location_id, "end": end}).one()
            assert (figures.deferred_held.count, figures.deferred_held.cents) == (count, cents), (start, figures.location_id)
        assert {f.location_id for f in report.locations} == set(ids)
