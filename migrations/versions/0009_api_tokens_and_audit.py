"""api tokens and audit: scoped credentials stored as hashes, and who did each command

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("all_locations", sa.Boolean(), nullable=False),
        sa.Column("location_ids", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('billing', 'front_desk', 'finance', 'refunds')", name="ck_api_token_scope"),
        sa.CheckConstraint("all_locations = (cardinality(location_ids) = 0)", name="ck_api_token_reach"),
        sa.CheckConstraint("length(secret_sha256) = 64", name="ck_api_token_hash"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("staff", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=True),
        sa.Column("request_key", sa.Text(), nullable=True),
        sa.Column("workflow_id", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_entry_subject", "audit_entry", ["subject_kind", "subject_id", "id"])
    op.create_index("ix_audit_entry_location_id", "audit_entry", ["location_id"])
    op.create_index("ix_audit_entry_workflow", "audit_entry", ["workflow_id"], postgresql_where=sa.text("workflow_id IS NOT NULL"))
    op.create_index(
        "uq_audit_entry_request",
        "audit_entry",
        ["token", "action", "subject_id", "request_key"],
        unique=True,
        postgresql_where=sa.text("request_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("audit_entry")
    op.drop_table("api_token")
