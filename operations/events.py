"""The billing system's two ways to hear about events: a readable feed and signed deliveries.

Both read the outbox (`models.outbox`), which is written in the same transaction as the change each
event reports. The feed (`events_after`) is ordered by the outbox id, so a consumer that keeps the
last id it saw as its cursor can always resync, whatever deliveries it missed.

Deliveries (`deliver_pending`, run forever by `DeliveryLoop`) POST each undelivered event to one
configured URL, signed with HMAC-SHA256, stream by stream, each stream in order. They are *at least
once*: an event is marked delivered only after a 2xx answer, so a crash between the answer and the
commit sends it again (the receiver de-duplicates on `event_id`). A failure stops its own stream
only: the event waits longer after each failed attempt (`backoff_seconds`), and after
`MAX_DELIVERY_ATTEMPTS` it is parked so its stream moves on (an operator can deliver it again).
One process at a time delivers a stream (a transaction-scoped advisory lock on the stream), so
several API replicas never overtake each other within a stream.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, Engine, literal, or_, text
from sqlmodel import Session, select

from models.clinic import Client as ClinicClient
from models.columns import utcnow
from models.db import session_scope
from models.outbox import OutboxEvent
from models.subscriptions import Subscription

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Billing-Signature"
EVENT_ID_HEADER = "X-Billing-Event-Id"
MAX_PAGE = 1000
MAX_DELIVERY_ATTEMPTS = 20


@dataclass(frozen=True)
class EventPage:
    """One page of the feed. `next_cursor` is the id of the last event (the cursor for the next page)."""

    events: list[dict[str, Any]]
    next_cursor: int
    has_more: bool


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    #: attempts so far of the event that failed (0 when none failed), for the backoff.
    failed_attempts: int = 0


def event_json(event: OutboxEvent) -> dict[str, Any]:
    """The public shape of an event, the same in the feed and in deliveries."""
    created: datetime | None = event.created_at
    return {
        "id": event.id,
        "event_id": event.event_id,
        "type": event.type,
        "stream": event.stream,
        "seq": event.seq,
        "payload": event.payload,
        "created_at": created.isoformat() if created else None,
    }


def events_after(engine: Engine, cursor: int, limit: int, *, stream: str | None = None, reach: frozenset[str] | None = None) -> EventPage:
    """Events with an outbox id greater than `cursor`, oldest first, at most `limit` of them; with
    `reach`, only those of subscriptions and clients at those locations (None: every event)."""
    if cursor < 0:
        raise ValueError("cursor must be 0 or a previous page's next_cursor")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    with Session(engine) as session:
        query = select(OutboxEvent).where(OutboxEvent.id > cursor)  # type: ignore[operator]
        if stream is not None:
            query = query.where(OutboxEvent.stream == stream)
        if reach is not None:
            query = query.where(in_reach(reach))
        rows = list(session.exec(query.order_by(OutboxEvent.id).limit(limit + 1)))  # type: ignore[arg-type]
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1].id if rows else cursor
    assert next_cursor is not None
    return EventPage([event_json(row) for row in rows], next_cursor, has_more)


def in_reach(reach: frozenset[str]) -> ColumnElement[bool]:
    """The events of the streams of `reach`'s locations: `subscription:<id>` by the subscription's
    location, `client:<id>` by the client's. Streams of no location (finance's) are left out."""
    locations = sorted(reach)
    subscription_streams = select(literal("subscription:") + Subscription.id).where(Subscription.location_id.in_(locations))  # type: ignore[attr-defined]
    client_streams = select(literal("client:") + ClinicClient.id).where(ClinicClient.location_id.in_(locations))  # type: ignore[attr-defined]
    return or_(OutboxEvent.stream.in_(subscription_streams), OutboxEvent.stream.in_(client_streams))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- signatures
def sign(body: bytes, secret: str, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the timestamp is signed too, so a
    receiver can refuse an old delivery replayed by someone who captured it."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(body: bytes, header: str | None, secret: str, *, tolerance_s: float | None = 300.0, now: float | None = None) -> bool:
    """True when `header` is a valid signature of `body` (and, with a tolerance, recent enough)."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    if tolerance_s is not None and abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
        return False
    expected = sign(body, secret, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


# ---------------------------------------------------------------------------------- deliveries
def deliver_pending(
    engine: Engine,
    url: str,
    secret: str,
    *,
    batch: int = 50,
    timeout_s: float = 5.0,
    http: httpx.Client | None = None,
    backoff_base_s: float = 1.0,
    backoff_cap_s: float = 300.0,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> DeliveryReport:
    """POST the due undelivered events of up to `batch` streams, each stream oldest first and up to
    `batch` events; a failure stops its stream (backed off, parked after `max_attempts`), never the others."""
    own_client = http is None
    client = http or httpx.Client(timeout=timeout_s)
    report = DeliveryReport(0, 0)
    try:
        for stream in _due_streams(engine, batch):
            done = _deliver_stream(engine, client, url, secret, stream, batch, backoff_base_s, backoff_cap_s, max_attempts)
            report = DeliveryReport(report.delivered + done.delivered, report.failed + done.failed, max(report.failed_attempts, done.failed_attempts))
        return report
    finally:
        if own_client:
            client.close()


def _due_streams(engine: Engine, limit: int) -> list[str]:
    """Streams whose oldest undelivered event is due (never tried, or its backoff is over)."""
    with Session(engine) as session:
        rows = session.execute(_DUE_STREAMS, {"limit": limit}).all()
    return [row.stream for row in rows]


_DUE_STREAMS = text(
    """
    SELECT stream FROM (
        SELECT DISTINCT ON (stream) stream, id, next_attempt_at FROM outbox_event
        WHERE delivered_at IS NULL AND parked_at IS NULL ORDER BY stream, id
    ) AS head
    WHERE next_attempt_at IS NULL OR next_attempt_at <= now()
    ORDER BY id LIMIT :limit
    """
)


def _deliver_stream(
    engine: Engine, client: httpx.Client, url: str, secret: str, stream: str, batch: int, base_s: float, cap_s: float, max_attempts: int
) -> DeliveryReport:
    """Deliver one stream in order under its advisory lock (another process holding it: skipped)."""
    delivered = 0
    with session_scope(engine) as session:
        locked = session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || :stream))"), {"stream": stream}).scalar()
        if not locked:
            return DeliveryReport(0, 0)
        rows = list(
            session.exec(
                select(OutboxEvent)
                .where(OutboxEvent.stream == stream, OutboxEvent.delivered_at.is_(None), OutboxEvent.parked_at.is_(None))  # type: ignore[union-attr]
                .order_by(OutboxEvent.id)  # type: ignore[arg-type]
                .limit(batch)
            )
        )
        now = utcnow()
        parked = 0
        for row in rows:
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                break
            row.delivery_attempts += 1
            ok = _post(client, url, secret, row)
            if ok:
                row.delivered_at = utcnow()
                delivered += 1
            elif row.delivery_attempts >= max_attempts:
                row.parked_at = utcnow()  # the stream moves on past it
                parked += 1
                log.error("event %s parked after %d refused deliveries; stream %s moves on", row.event_id, row.delivery_attempts, stream)
            else:
                row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.delivery_attempts, base_s=base_s, cap_s=cap_s))
            session.add(row)
            session.flush()
            if not ok and row.parked_at is None:
                return DeliveryReport(delivered, parked + 1, row.delivery_attempts)
    return DeliveryReport(delivered, parked, max_attempts if parked else 0)


def _post(client: httpx.Client, url: str, secret: str, event: OutboxEvent) -> bool:
    body = json.dumps(event_json(event), separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret, int(time.time())),
        EVENT_ID_HEADER: event.event_id,
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        log.warning("event %s delivery failed: %s", event.event_id, type(error).__name__)
        return False
    if 200 <= response.status_code < 300:
        return True
    log.warning("event %s delivery refused with HTTP %s", event.event_id, response.status_code)
    return False


def backoff_seconds(attempts: int, *, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """The wait before the next try of an event that failed `attempts` times: base * 2^(n-1), capped."""
    if attempts <= 0:
        return 0.0
    return min(cap_s, base_s * (2 ** min(attempts - 1, 30)))


class DeliveryLoop:
    """`deliver_pending` forever in a daemon thread: at once while there is a backlog, every
    `idle_s` when caught up, and after `backoff_seconds` when the receiver fails."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        secret: str,
        *,
        batch: int = 50,
        idle_s: float = 1.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
    ) -> None:
        self._engine, self._url, self._secret = engine, url, secret
        self._batch, self._idle_s = batch, idle_s
        self._base_s, self._cap_s = backoff_base_s, backoff_cap_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeliveryLoop:
        self._thread = threading.Thread(target=self._run, name="event-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while not self._stop.is_set():
                try:
                    report = deliver_pending(
                        self._engine, self._url, self._secret, batch=self._batch, http=http, backoff_base_s=self._base_s, backoff_cap_s=self._cap_s
                    )
                except Exception:
                    log.exception("event delivery pass failed")
                    report = DeliveryReport(0, 1, 1)
                if report.failed and not report.delivered:
                    wait = min(self._idle_s * 5, backoff_seconds(report.failed_attempts, base_s=self._base_s, cap_s=self._cap_s))
                elif report.delivered >= self._batch:
                    wait = 0.0
                else:
                    wait = self._idle_s
                self._stop.wait(wait)
