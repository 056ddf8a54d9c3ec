"""report covering indexes: a location's invoices and payments by time, with what the report sums

The finance report sums a month of invoices (status, total) and payments (status, purpose, method,
amounts, attempt, decline reason) per location. The list indexes on (location_id, created_at, id)
already find that month; carrying those columns in them (INCLUDE) lets the report read the index
alone instead of fetching each row from the heap, at no extra index for a posting to maintain.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = (
    ("ix_invoice_location_created", "invoice", "status, total_cents, paid_cents"),
    ("ix_payment_location_created", "payment", "status, purpose, method, approved_cents, amount_cents, attempt, decline_reason"),
)


def upgrade() -> None:
    for name, table, carried in COVERING:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON {table} (location_id, created_at, id) INCLUDE ({carried})")


def downgrade() -> None:
    for name, table, _ in COVERING:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON {table} (location_id, created_at, id)")
