"""The event outbox: what the billing system must act on, written in the same database transaction
as the change it reports, so an event exists exactly when its change does.

Events of one stream carry a gapless sequence number (`seq`), so a consumer can tell it missed one
and resync from the feed. The next number comes from the stream's counter row, whose upsert locks it:
writers racing on one stream (a janitor, a refund and a charge on one client) queue there instead of
colliding on UNIQUE (stream, seq).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from foundation.ids import event_id_for
from models.columns import tz
from models.stamp import stamp_of


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"
    __table_args__ = (
        UniqueConstraint("stream", "seq", name="uq_outbox_stream_seq"),
        Index("ix_outbox_undelivered", "stream", "id", postgresql_where=text("delivered_at IS NULL AND parked_at IS NULL")),
    )
    id: int | None = Field(default=None, sa_column=Column("id", BigInteger, primary_key=True, autoincrement=True))
    event_id: str = Field(sa_column=Column("event_id", Text, nullable=False, unique=True))
    type: str = Field(sa_column=Column("type", Text, nullable=False, index=True))
    stream: str = Field(sa_column=Column("stream", Text, nullable=False), description="subscription:<id>, invoice:<id> or client:<id>")
    seq: int = Field(sa_column=Column("seq", Integer, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column("payload", JSONB, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
    delivered_at: datetime | None = Field(default=None, sa_column=tz("delivered_at", nullable=True))
    delivery_attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=tz("next_attempt_at", nullable=True))
    # Set when the receiver refused the event too many times: its stream moves on, and an operator
    # can deliver it again by clearing this.
    parked_at: datetime | None = Field(default=None, sa_column=tz("parked_at", nullable=True))


class OutboxStream(SQLModel, table=True):
    """The last sequence number handed out on one stream."""

    __tablename__ = "outbox_stream"
    stream: str = Field(sa_column=Column("stream", Text, primary_key=True))
    last_seq: int = Field(sa_column=Column("last_seq", Integer, nullable=False))


def emit(session: Session, *, type: str, stream: str, payload: dict[str, Any], dedupe_key: str | None = None) -> None:
    """Add an event to `stream` with the next sequence number, in one statement.

    `dedupe_key` makes emission idempotent for activities that retry: the event id is derived from it
    and a second emission with the same key inserts nothing and takes no number. The counter row stays
    locked until commit, so a second writer on the stream waits and then takes the number after.
    """
    event_id = event_id_for(dedupe_key) if dedupe_key else str(uuid.uuid4())
    params = {"event_id": event_id, "type": type, "stream": stream, "payload": json.dumps(payload), "created_at": stamp_of(session)}
    session.execute(_EMIT, params)


# Built once (its cache key is memoized): a charge emits two events. One statement: the counter's
# upsert re-reads a row another transaction committed meanwhile, which MAX(seq) in one snapshot cannot.
_EMIT = text(
    "WITH next AS ("
    " INSERT INTO outbox_stream (stream, last_seq)"
    " SELECT :stream, 1 WHERE NOT EXISTS (SELECT 1 FROM outbox_event WHERE event_id = :event_id)"
    " ON CONFLICT (stream) DO UPDATE SET last_seq = outbox_stream.last_seq + 1"
    " RETURNING last_seq) "
    "INSERT INTO outbox_event (event_id, type, stream, seq, payload, delivery_attempts, created_at) "
    "SELECT :event_id, :type, :stream, next.last_seq, CAST(:payload AS jsonb), 0, COALESCE(CAST(:created_at AS timestamptz), now()) FROM next "
    "ON CONFLICT (event_id) DO NOTHING"
)
