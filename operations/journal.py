"""The accounting export: one journal line per ledger entry of a location's local day.

The CSV follows the layout of QuickBooks Online's journal-entry import (and what Xero's manual
journal import reads alike): one row per line, the rows sharing a journal number form one balanced
entry, the account by name, debit and credit in separate columns in dollars with two decimals (the
other column left empty), a description, and our reference beside it. Each journal number is the
ledger transaction's id, so an entry imported twice is recognized as the same one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from foundation.money import to_dollar_string
from operations.finance_scope import checked_day, local_day_bounds, locations_in_reach

JOURNAL_FORMAT = "QuickBooks Online journal entry import (one row per line; debit and credit in dollars)"
CSV_COLUMNS = ("JournalDate", "JournalNo", "AccountName", "Debits", "Credits", "Description", "Reference", "Location", "Client", "Invoice")


@dataclass(frozen=True)
class JournalLine:
    date: date
    transaction_id: int
    account: str
    debit_cents: int
    credit_cents: int
    memo: str
    reference: str
    kind: str
    location_id: str
    client_id: str | None
    invoice_id: str | None
    posted_at: datetime


@dataclass(frozen=True)
class Journal:
    day: date
    location_id: str | None
    lines: list[JournalLine]

    def totals(self) -> tuple[int, int]:
        """(debits, credits) of every line, in cents: equal when the day's books balance."""
        return sum(line.debit_cents for line in self.lines), sum(line.credit_cents for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        debits, credits = self.totals()
        return {
            "date": self.day.isoformat(),
            "location_id": self.location_id,
            "format": JOURNAL_FORMAT,
            "amounts_in": "cents",
            "transactions": len({line.transaction_id for line in self.lines}),
            "debits_cents": debits,
            "credits_cents": credits,
            "lines": [{**asdict(line), "date": line.date.isoformat(), "posted_at": line.posted_at.isoformat()} for line in self.lines],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for line in self.lines:
            writer.writerow(
                (
                    line.date.isoformat(),
                    line.transaction_id,
                    line.account,
                    to_dollar_string(line.debit_cents) if line.debit_cents else "",
                    to_dollar_string(line.credit_cents) if line.credit_cents else "",
                    line.memo or line.kind.replace("_", " "),
                    line.reference,
                    line.location_id,
                    line.client_id or "",
                    line.invoice_id or "",
                )
            )
        return out.getvalue()


# One location's day, by the instants it starts and ends (an index range, not a per-row zone cast).
_LINES = text(
    "SELECT t.id, t.created_at, t.reference, t.kind, t.memo, t.location_id, t.client_id, t.invoice_id, e.account, e.amount_cents"
    " FROM ledger_transaction t JOIN ledger_entry e ON e.transaction_id = t.id"
    " WHERE t.location_id = :location_id AND t.created_at >= :start AND t.created_at < :end"
    " ORDER BY t.id, e.id"
)


def journal(engine: Engine, day: date, *, location_id: str | None = None, reach: frozenset[str] | None = None) -> Journal:
    """Every ledger entry posted on `day` in each location's own zone (one location, or all in reach)."""
    checked_day(day)
    lines: list[JournalLine] = []
    with Session(engine) as session:
        for location in locations_in_reach(session, location_id, reach):
            start, end = local_day_bounds(day, location.timezone)
            for row in session.execute(_LINES, {"location_id": location.id, "start": start, "end": end}):
                amount = int(row.amount_cents)
                lines.append(
                    JournalLine(
                        day,
                        int(row.id),
                        row.account,
                        max(amount, 0),
                        max(-amount, 0),
                        row.memo or "",
                        row.reference,
                        row.kind,
                        row.location_id,
                        row.client_id,
                        row.invoice_id,
                        row.created_at,
                    )
                )
    return Journal(day, location_id, lines)
