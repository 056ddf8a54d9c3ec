"""plan versions: each plan's terms over time, a plan's retirement, and the version a subscription's term runs on

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("health_plan", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("health_plan", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("ck_health_plan_version_positive", "health_plan", "version >= 1")
    op.create_table(
        "plan_version",
        sa.Column("plan_id", sa.Text(), sa.ForeignKey("health_plan.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), sa.CheckConstraint("price_cents >= 0", name="ck_plan_version_price_cents_nonneg"), nullable=False),
        sa.Column(
            "enrollment_fee_cents",
            sa.BigInteger(),
            sa.CheckConstraint("enrollment_fee_cents >= 0", name="ck_plan_version_enrollment_fee_cents_nonneg"),
            nullable=False,
        ),
        sa.Column("interval_months", sa.SmallInteger(), nullable=False),
        sa.Column("term_months", sa.SmallInteger(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("dunning", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("proration_policy", sa.Text(), nullable=False),
        sa.Column("cancellation_policy", sa.Text(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "version", name="pk_plan_version"),
        sa.CheckConstraint("version >= 1", name="ck_plan_version_version_positive"),
    )
    # Every plan so far is its own first version, in effect since it was created.
    op.execute(
        "INSERT INTO plan_version (plan_id, version, name, price_cents, enrollment_fee_cents, interval_months, term_months,"
        " auto_renew, dunning, proration_policy, cancellation_policy, effective_at)"
        " SELECT id, 1, name, price_cents, enrollment_fee_cents, interval_months, term_months, auto_renew, dunning,"
        " proration_policy, cancellation_policy, COALESCE(created_at, now()) FROM health_plan"
    )
    # The version the subscription's current term bills; every subscription so far is on version 1.
    op.add_column("subscription", sa.Column("plan_version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    op.drop_column("subscription", "plan_version")
    op.drop_table("plan_version")
    op.drop_constraint("ck_health_plan_version_positive", "health_plan", type_="check")
    op.drop_column("health_plan", "retired_at")
    op.drop_column("health_plan", "version")
