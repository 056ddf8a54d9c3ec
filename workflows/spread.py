"""Deterministic spreading of charge moments over a window (the thundering herd on the 1st).

Why this module exists: a national chain has hundreds of thousands of subscriptions, many due at
09:00 local on the 1st. Firing them all in the same second makes a burst the Temporal server, the
database and Gravity all feel at once. Each subscription instead fires at its due instant plus a
fixed offset in [0, window), derived from its id, so load is flat across the window and every replay,
retry and worker computes the same moment.

The offset uses SHA-256 of the key, not Python's ``hash()``: ``hash()`` of a str is salted per
process (PYTHONHASHSEED), so it would differ between workers and between a workflow's first run and
its replay. The spread is applied by callers on top of ``calendar.due_instants``, never inside the
calendar, so the calendar stays the plain, documented local-time rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

__all__ = ["DEFAULT_WINDOW_SECONDS", "spread_instant", "spread_offset_seconds", "spread_retry_instant"]

#: 15 minutes after the local charge time: wide enough to flatten a burst, short enough that
#: "charged at 09:00" still reads true to a clinic.
DEFAULT_WINDOW_SECONDS = 900


def spread_offset_seconds(key: str, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> int:
    """A stable offset in [0, window_seconds) for `key` (e.g. the subscription id).

    The first 8 bytes of SHA-256 as an unsigned int, modulo the window: uniform enough (the modulo
    bias over 2**64 is negligible) and identical on every machine and Python version.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty str, got {key!r}")
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int) or window_seconds < 1:
        raise ValueError(f"window_seconds must be an int >= 1, got {window_seconds!r}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % window_seconds


def spread_instant(due_at: datetime, key: str, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> datetime:
    """`due_at` plus the key's offset: the moment a caller actually starts the charge."""
    if not isinstance(due_at, datetime) or due_at.tzinfo is None:
        raise ValueError("due_at must be a timezone-aware datetime")
    return due_at + timedelta(seconds=spread_offset_seconds(key, window_seconds))


def spread_retry_instant(retry_at: datetime, subscription_id: str, attempt: int, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> datetime:
    """When dunning attempt `attempt` (2 for the first retry) of a subscription starts: the dunning
    schedule's instant plus an offset keyed by subscription and attempt, so a cohort declined on the
    1st does not retry in one second either, and one subscription's retries do not all share a moment."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an int >= 1, got {attempt!r}")
    return spread_instant(retry_at, f"{subscription_id}:retry:{attempt}", window_seconds)
