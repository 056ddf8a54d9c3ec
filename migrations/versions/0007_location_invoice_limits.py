"""location invoice limits: the largest amount and the most lines the API takes for a location

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing locations take the defaults: $50,000 and 50 lines per counter invoice.
    op.add_column("location", sa.Column("max_invoice_cents", sa.BigInteger(), server_default="5000000", nullable=False))
    op.add_column("location", sa.Column("max_invoice_lines", sa.SmallInteger(), server_default="50", nullable=False))
    op.create_check_constraint("ck_location_max_invoice_cents_positive", "location", "max_invoice_cents > 0")
    op.create_check_constraint("ck_location_max_invoice_lines_positive", "location", "max_invoice_lines > 0")


def downgrade() -> None:
    op.drop_constraint("ck_location_max_invoice_lines_positive", "location", type_="check")
    op.drop_constraint("ck_location_max_invoice_cents_positive", "location", type_="check")
    op.drop_column("location", "max_invoice_lines")
    op.drop_column("location", "max_invoice_cents")
