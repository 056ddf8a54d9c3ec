"""The audit trail: who (token and staff member) asked for each command and money movement.

Commands write their entry in the transaction of the change where there is one; movements run by a
workflow (refunds, deposits, terminal payments, invoice cancellations, subscription commands) write
it when the workflow is started or the command accepted, naming the workflow. A retried request
(same Idempotency-Key) records its action once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from foundation.scopes import Actor
from models.access import AuditEntry
from models.db import session_scope


@dataclass(frozen=True)
class Subject:
    """What an entry is about: a kind (subscription, payment, invoice, client, ...) and its id, at a location."""

    kind: str
    id: str
    location_id: str | None


@dataclass(frozen=True)
class AuditLine:
    at: datetime | None
    token: str
    staff: str | None
    action: str
    subject_kind: str
    subject_id: str
    location_id: str | None
    request_key: str | None
    workflow_id: str | None


def record(session: Session, actor: Actor | None, action: str, subject: Subject, *, request_key: str | None = None, workflow_id: str | None = None) -> None:
    """Add the entry in `session`'s transaction (nothing when no actor is known, as in the demo)."""
    if actor is None:
        return
    statement = (
        insert(AuditEntry)
        .values(
            token=actor.token,
            staff=actor.staff,
            action=action,
            subject_kind=subject.kind,
            subject_id=subject.id,
            location_id=subject.location_id,
            request_key=request_key,
            workflow_id=workflow_id,
        )
        .on_conflict_do_nothing()
    )
    session.execute(statement)


def record_now(engine: Engine, actor: Actor | None, action: str, subject: Subject, *, request_key: str | None = None, workflow_id: str | None = None) -> None:
    """`record` in a transaction of its own (a movement whose change a workflow makes)."""
    if actor is None:
        return
    with session_scope(engine) as session:
        record(session, actor, action, subject, request_key=request_key, workflow_id=workflow_id)


def audit_trail(engine: Engine, subject_kind: str, subject_id: str, reach: frozenset[str] | None) -> list[AuditLine]:
    """The entries about one subject, oldest first; only those at locations in `reach` (None: all)."""
    with Session(engine) as session:
        query = select(AuditEntry).where(AuditEntry.subject_kind == subject_kind, AuditEntry.subject_id == subject_id)
        if reach is not None:
            query = query.where(AuditEntry.location_id.in_(sorted(reach)))  # type: ignore[union-attr]
        rows = session.exec(query.order_by(AuditEntry.id))  # type: ignore[arg-type]
        return [
            AuditLine(row.at, row.token, row.staff, row.action, row.subject_kind, row.subject_id, row.location_id, row.request_key, row.workflow_id)
            for row in rows
        ]


def workflow_location(session: Session, workflow_id: str) -> str | None:
    """The location of the movement a workflow runs, as its start recorded it (None: not recorded)."""
    row = session.exec(select(AuditEntry.location_id).where(AuditEntry.workflow_id == workflow_id).order_by(AuditEntry.id).limit(1)).first()  # type: ignore[arg-type]
    return row
