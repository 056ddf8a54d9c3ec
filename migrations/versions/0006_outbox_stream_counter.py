"""outbox stream counter: the next sequence number per stream, taken under a row lock

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # MAX(seq) + 1 in one snapshot let writers racing on one stream take the same number.
    op.create_table(
        "outbox_stream",
        sa.Column("stream", sa.Text(), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
    )
    op.execute("INSERT INTO outbox_stream (stream, last_seq) SELECT stream, MAX(seq) FROM outbox_event GROUP BY stream")


def downgrade() -> None:
    op.drop_table("outbox_stream")
