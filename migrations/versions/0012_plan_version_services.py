"""plan version services: each version keeps the services it includes and how often per term

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("plan_version", sa.Column("services", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    # Services never changed before this revision: every version so far included the plan's current ones.
    op.execute(
        "UPDATE plan_version v SET services = (SELECT coalesce(jsonb_agg(jsonb_build_object('code', s.code, 'name', s.name,"
        " 'retail_cents', s.retail_cents, 'quantity', s.quantity) ORDER BY s.code), '[]'::jsonb) FROM plan_service s WHERE s.plan_id = v.plan_id)"
    )


def downgrade() -> None:
    op.drop_column("plan_version", "services")
