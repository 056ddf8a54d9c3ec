"""Each ledger account's opening balance, debits, credits and closing balance for a month.

Why from the entries and not from a stored balance: the ledger is the record, and a figure an
accountant can re-add from the journal export is one they can trust. Balances are debit-positive
(an asset's balance is positive, a liability's or income's negative), as the ledger stores them;
debits and credits are both positive sums. A transaction counts on its location's local day.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from models.ledger import Account
from operations.finance_scope import locations_in_reach, month_of

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


# Every entry up to the period's end, on its location's local day: before the period it is opening
# balance, within it a debit or a credit.
_SUMS = text(
    "WITH dated AS ("
    " SELECT e.account, e.amount_cents, CAST(timezone(l.timezone, t.created_at) AS date) AS day"
    " FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id JOIN location l ON l.id = t.location_id"
    " WHERE t.location_id = ANY(:ids) AND t.created_at < CAST(:end AS date) + interval '2 days')"
    " SELECT account,"
    " coalesce(sum(amount_cents) FILTER (WHERE day < :start), 0) AS opening,"
    " coalesce(sum(amount_cents) FILTER (WHERE day >= :start AND amount_cents > 0), 0) AS debits,"
    " coalesce(-sum(amount_cents) FILTER (WHERE day >= :start AND amount_cents < 0), 0) AS credits"
    " FROM dated WHERE day <= :end GROUP BY account"
)


def ledger_balances(engine: Engine, period: str, *, location_id: str | None = None, reach: frozenset[str] | None = None) -> LedgerBalances:
    """Every account of the chart (and any other the ledger holds) for the month `period` (YYYY-MM)."""
    start, end = month_of(period)
    with Session(engine) as session:
        ids = [loc.id for loc in locations_in_reach(session, location_id, reach)]
        rows = session.execute(_SUMS, {"ids": ids, "start": start, "end": end}).all() if ids else []
    sums = {row.account: (int(row.opening), int(row.debits), int(row.credits)) for row in rows}
    accounts = [str(a) for a in Account] + sorted(set(sums) - {str(a) for a in Account})
    balances = []
    for account in accounts:
        opening, debits, credits = sums.get(account, (0, 0, 0))
        balances.append(AccountBalance(account, opening, debits, credits, opening + debits - credits))
    return LedgerBalances(period, start, end, location_id, balances)
