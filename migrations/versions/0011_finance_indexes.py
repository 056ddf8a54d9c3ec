"""finance indexes: a location's day of ledger postings, and an invoice's postings by kind

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The journal export reads one location's day by its UTC bounds; revenue recognition counts an
    # invoice's `revenue_recognized` postings on every janitor run.
    op.create_index("ix_ledger_transaction_location_created", "ledger_transaction", ["location_id", "created_at"], unique=False)
    op.create_index("ix_ledger_transaction_invoice_kind", "ledger_transaction", ["invoice_id", "kind"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ledger_transaction_invoice_kind", table_name="ledger_transaction")
    op.drop_index("ix_ledger_transaction_location_created", table_name="ledger_transaction")
