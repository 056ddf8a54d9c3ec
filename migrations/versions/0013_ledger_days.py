"""ledger days: each location's debits and credits per account and UTC day, kept by the ledger

Ledger balances and the report's deferred revenue held need every entry since the books began; at
a clinic group's size that is millions of rows per call. `ledger_day` holds the same sums a day at
a time, written by a statement trigger on `ledger_entry` in the posting's own transaction (so it
can never disagree with the entries), as rows only ever added: no posting waits on another's lock.
The janitor folds a day's rows into one (`books.ledger_days.compact`), which keeps every sum. Days
are UTC, so a location's time zone may change: readers re-date from the entries only the UTC days
a local day boundary cuts through (see `operations.ledger_balances`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The UTC day of a ledger transaction, and its entries' sums (debits and credits both positive).
SUMS = """
SELECT t.location_id, e.account, CAST(timezone('UTC', t.created_at) AS date),
       count(*), COALESCE(sum(e.amount_cents) FILTER (WHERE e.amount_cents > 0), 0),
       COALESCE(-sum(e.amount_cents) FILTER (WHERE e.amount_cents < 0), 0)
  FROM {entries} e JOIN ledger_transaction t ON t.id = e.transaction_id
 GROUP BY 1, 2, 3
"""
COLUMNS = "(location_id, account, day, entries, debit_cents, credit_cents)"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE ledger_day ("
        " location_id text NOT NULL, account text NOT NULL, day date NOT NULL,"
        " entries bigint NOT NULL, debit_cents bigint NOT NULL, credit_cents bigint NOT NULL)"
    )
    op.execute("CREATE INDEX ix_ledger_day_location_account_day ON ledger_day (location_id, account, day)")
    op.execute(
        "CREATE FUNCTION ledger_day_add() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" INSERT INTO ledger_day {COLUMNS} {SUMS.format(entries='added')}; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER ledger_entry_days AFTER INSERT ON ledger_entry REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ledger_day_add()"
    )
    op.execute(f"INSERT INTO ledger_day {COLUMNS} {SUMS.format(entries='ledger_entry')}")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS ledger_entry_days ON ledger_entry")
    op.execute("DROP FUNCTION IF EXISTS ledger_day_add()")
    op.execute("DROP TABLE IF EXISTS ledger_day")
