"""The two records merged into one list ordered by time, though each keeps its own clock."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta

from foundation.ids import terminal_workflow_id
from operations.history.entries import HistoryEntry
from operations.history.values import int_or_none

_ISSUE_KINDS = ("invoice", "ledger:invoice_issued", "event:invoice.issued")
CLOCKS_AGREE = timedelta(minutes=5)


def interleave(temporal: list[HistoryEntry], database: list[HistoryEntry]) -> list[HistoryEntry]:
    """Both records in one list ordered by time.

    Why not simply sort on `at`: the two records keep their own clocks. In production they agree
    (the workflow clock is the wall clock) and this is a plain sort by time. With simulated time (the
    demo, time-skipping tests) the workflow clock runs months ahead of the rows' wall-clock stamps,
    and a plain sort would put all of one record before all of the other. So a book entry is anchored
    to the workflow event it records when both name the same thing (the gateway transaction id, the
    terminal payment, the invoice and attempt, the cycle an invoice was issued for) and, when the two
    clocks disagree by more than `CLOCKS_AGREE` or the row is dated before that event (the books take
    the workflow's time of scheduling, the event the time its task completed), placed on the
    workflow's clock right after that event; an entry with no such match keeps its distance from the
    anchored entry before it.
    `at` itself is never changed: it is when that record was written, by its own clock.
    """
    decoded_order = {id(e): i for i, e in enumerate(temporal)}  # runs of one workflow in chain order
    temporal = sorted(temporal, key=lambda e: (e.at, e.workflow_id or "", decoded_order[id(e)]))
    database = sorted(database, key=lambda e: e.at)
    index = {id(e): i for i, e in enumerate(temporal)}
    times = [e.at for e in temporal]
    by_external: dict[str, HistoryEntry] = {}
    by_payment: dict[str, HistoryEntry] = {}
    by_attempt: dict[tuple[str, int], HistoryEntry] = {}
    by_cycle_invoice: dict[str, HistoryEntry] = {}
    for entry in temporal:
        if entry.external_transaction_id:
            by_external.setdefault(entry.external_transaction_id, entry)
        if entry.payment_id and entry.workflow_id == terminal_workflow_id(entry.payment_id):
            by_payment[entry.payment_id] = entry  # the terminal workflow's last word on its payment
        if entry.kind == "charge_result" and entry.invoice_id and entry.attempt:
            by_attempt.setdefault((entry.invoice_id, entry.attempt), entry)
        if entry.kind == "charge_requested" and entry.invoice_id:
            by_cycle_invoice.setdefault(entry.invoice_id, entry)

    def anchor_of(entry: HistoryEntry) -> HistoryEntry | None:
        if entry.external_transaction_id and entry.external_transaction_id in by_external:
            return by_external[entry.external_transaction_id]
        if entry.payment_id and entry.payment_id in by_payment:
            return by_payment[entry.payment_id]
        payload_attempt = entry.payload.get("attempt") if isinstance(entry.payload, dict) else None
        attempt = entry.attempt or int_or_none(payload_attempt)
        if entry.invoice_id and attempt and (entry.invoice_id, attempt) in by_attempt:
            return by_attempt[(entry.invoice_id, attempt)]
        if entry.kind in _ISSUE_KINDS and entry.invoice_id:
            return by_cycle_invoice.get(entry.invoice_id)
        return None

    def own_time(entry: HistoryEntry, moment: datetime, position: int) -> tuple[datetime, int, int, int]:
        return (moment, bisect_right(times, moment) - 1, 1, position)

    keys: list[tuple[datetime, int, int, int]] = [(e.at, index[id(e)], 0, 0) for e in temporal]
    anchors = [anchor_of(e) for e in database]
    offset = next((a.at - e.at for e, a in zip(database, anchors, strict=True) if a is not None), timedelta(0))
    floor: tuple[datetime, int, int, int] | None = None
    for position, (entry, anchor) in enumerate(zip(database, anchors, strict=True)):
        if anchor is not None:
            offset = anchor.at - entry.at
        if anchor is not None and (abs(offset) > CLOCKS_AGREE or entry.at < anchor.at):
            # Never before the event it records: the row is dated when the activity was scheduled,
            # the event when the workflow task that ran it completed.
            key = (anchor.at, index[id(anchor)], 1, position)
        elif abs(offset) <= CLOCKS_AGREE:
            key = own_time(entry, entry.at, position)
        else:
            key = own_time(entry, entry.at + offset, position)
        floor = key if floor is None else max(floor, key)  # the books keep their own order
        keys.append((*floor[:3], position))
    everything = [*temporal, *database]
    return [everything[i] for i in sorted(range(len(everything)), key=lambda i: keys[i])]
