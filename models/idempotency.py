"""Idempotency keys of the HTTP API: a POST repeated with the same `Idempotency-Key` gets the first
answer back instead of doing its work twice (a second enrollment, a second terminal sale).

A row is claimed (status_code NULL) before the work starts, so a concurrent duplicate sees "in
progress" rather than racing; it is completed with the response on success and deleted on a refusal,
so a refused request leaves nothing behind and may be retried with the same key. `created_at` is
when the key was last claimed: an unanswered claim older than the API's lease belongs to a request
that died, and a retry takes it over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.columns import tz


class ApiIdempotency(SQLModel, table=True):
    __tablename__ = "api_idempotency"
    key: str = Field(sa_column=Column("key", Text, primary_key=True))
    route: str = Field(sa_column=Column("route", Text, nullable=False))
    request_hash: str = Field(sa_column=Column("request_hash", Text, nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column("status_code", Integer, nullable=True))
    response_body: Any | None = Field(default=None, sa_column=Column("response_body", JSONB, nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    completed_at: datetime | None = Field(default=None, sa_column=tz("completed_at", nullable=True))
