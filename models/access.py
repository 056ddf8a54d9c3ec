"""Who may use the API and who did what: scoped API tokens (only a hash of each secret is kept)
and the audit trail of commands and money movements, each naming its actor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Index, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from models.columns import tz


class ApiToken(SQLModel, table=True):
    """A credential the operator made with `billing token create`. The secret is shown once and only
    its SHA-256 is stored; `all_locations` or a non-empty `location_ids` says what it reaches."""

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("scope IN ('billing', 'front_desk', 'finance', 'refunds')", name="ck_api_token_scope"),
        CheckConstraint("all_locations = (cardinality(location_ids) = 0)", name="ck_api_token_reach"),
        CheckConstraint("length(secret_sha256) = 64", name="ck_api_token_hash"),
    )
    id: str = Field(sa_column=Column("id", Text, primary_key=True))
    name: str = Field(sa_column=Column("name", Text, nullable=False, unique=True))
    scope: str = Field(sa_column=Column("scope", Text, nullable=False))
    all_locations: bool = Field(sa_column=Column("all_locations", Boolean, nullable=False))
    location_ids: list[str] = Field(default_factory=list, sa_column=Column("location_ids", ARRAY(Text), nullable=False, server_default="{}"))
    secret_sha256: str = Field(sa_column=Column("secret_sha256", Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    revoked_at: datetime | None = Field(default=None, sa_column=tz("revoked_at", nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=tz("last_used_at", nullable=True))


class AuditEntry(SQLModel, table=True):
    """One command or money movement and who asked for it (`token`, `staff`). `request_key` is the
    caller's Idempotency-Key and `workflow_id` the workflow that runs the movement, where there is one."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_subject", "subject_kind", "subject_id", "id"),
        Index("ix_audit_entry_workflow", "workflow_id", postgresql_where=text("workflow_id IS NOT NULL")),
        # A retried request (same token and key) records its action once.
        Index("uq_audit_entry_request", "token", "action", "subject_id", "request_key", unique=True, postgresql_where=text("request_key IS NOT NULL")),
    )
    id: int | None = Field(default=None, sa_column=Column("id", BigInteger, primary_key=True, autoincrement=True))
    at: datetime | None = Field(default=None, sa_column=tz("at", now_default=True))
    token: str = Field(sa_column=Column("token", Text, nullable=False))
    staff: str | None = Field(default=None, sa_column=Column("staff", Text, nullable=True))
    action: str = Field(sa_column=Column("action", Text, nullable=False))
    subject_kind: str = Field(sa_column=Column("subject_kind", Text, nullable=False))
    subject_id: str = Field(sa_column=Column("subject_id", Text, nullable=False))
    location_id: str | None = Field(default=None, sa_column=Column("location_id", Text, nullable=True, index=True))
    request_key: str | None = Field(default=None, sa_column=Column("request_key", Text, nullable=True))
    workflow_id: str | None = Field(default=None, sa_column=Column("workflow_id", Text, nullable=True))
