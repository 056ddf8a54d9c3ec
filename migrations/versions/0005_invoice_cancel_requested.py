"""invoice cancellation requested: an invoice being cancelled takes no new collection

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Set by the cancellation saga's first step; from then on no new attempt may collect the invoice,
    # even if the saga has to wait a long time for a refund already in flight.
    op.add_column("invoice", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("invoice", "cancel_requested_at")
