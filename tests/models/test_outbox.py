"""The outbox's per-stream sequence under writers that race on one stream."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.db import session_scope
from models.outbox import OutboxEvent, emit


def test_concurrent_writers_on_one_stream_get_consecutive_numbers(db: Engine) -> None:
    """Chaos: a janitor, a refund and a subscription's charge emitting on one client stream at once
    collided on UNIQUE (stream, seq), and the loser's money movement failed."""
    writers, rounds = 8, 10
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        start.wait()
        for i in range(rounds):
            try:
                with session_scope(db) as session:
                    emit(session, type="test.raced", stream="client:race", payload={"n": n, "i": i}, dedupe_key=f"race:{n}:{i}")
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with Session(db) as session:
        seqs = sorted(e.seq for e in session.exec(select(OutboxEvent).where(OutboxEvent.stream == "client:race")))
    assert seqs == list(range(1, writers * rounds + 1))


def test_an_event_emitted_again_takes_no_number(db: Engine) -> None:
    """A retried activity emits the same event again: nothing is inserted and no number is used up."""
    for _ in range(2):
        with session_scope(db) as session:
            emit(session, type="test.once", stream="client:once", payload={}, dedupe_key="once:1")
    with session_scope(db) as session:
        emit(session, type="test.next", stream="client:once", payload={}, dedupe_key="once:2")
    with Session(db) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.stream == "client:once").order_by(col(OutboxEvent.seq))).all()
    assert [(e.type, e.seq) for e in rows] == [("test.once", 1), ("test.next", 2)]
