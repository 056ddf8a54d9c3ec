"""settled at: when a payment or refund became final, the day the reconciliation checks it

A sale still pending when its day was reconciled was found again by `updated_at`, which any later
write (a refund of it) moves on, re-listing the sale that later day; refunds have no such column at
all, so one finished after its day was never checked. `settled_at` is written once, when the books
make the row final. Final rows already there take `updated_at` (payments) or `created_at` (refunds),
the closest the books hold.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("refund", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE payment SET settled_at = updated_at WHERE status IN ('approved', 'declined', 'failed', 'voided', 'refunded')")
    op.execute("UPDATE refund SET settled_at = created_at WHERE status IN ('done', 'failed')")
    op.create_index("ix_payment_location_settled", "payment", ["location_id", "settled_at"])
    op.create_index("ix_refund_settled", "refund", ["settled_at"])


def downgrade() -> None:
    op.drop_index("ix_refund_settled", table_name="refund")
    op.drop_index("ix_payment_location_settled", table_name="payment")
    op.drop_column("refund", "settled_at")
    op.drop_column("payment", "settled_at")
