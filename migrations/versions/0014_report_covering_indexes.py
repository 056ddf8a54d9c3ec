"""report covering indexes: a location's invoices and payments by time, with what the report sums

The finance report sums a month of invoices (status, total) and payments (status, purpose, method,
amounts, attempt, decline reason) per location. The list indexes on (location_id, created_at, id)
already find that month; carrying those columns in them (INCLUDE) lets the report read the index
alone instead of fetching each row from the heap, at no extra index for a posting to maintain.
Each is rebuilt CONCURRENTLY beside the old one, so a live database keeps taking payments meanwhile.

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
        _rebuild(name, table, f" INCLUDE ({carried})")


def downgrade() -> None:
    for name, table, _ in COVERING:
        _rebuild(name, table, "")


def _rebuild(name: str, table: str, include: str) -> None:
    """Build the new index beside the old one without blocking the table's writes (CONCURRENTLY, so
    outside the migration's transaction), then swap it in under the old name."""
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_next")  # an earlier try's, possibly invalid
        op.execute(f"CREATE INDEX CONCURRENTLY {name}_next ON {table} (location_id, created_at, id){include}")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute(f"ALTER INDEX {name}_next RENAME TO {name}")
