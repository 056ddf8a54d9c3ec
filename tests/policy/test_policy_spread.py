"""The thundering-herd spread: stable, in range, roughly uniform, independent of PYTHONHASHSEED."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from workflows.spread import spread_instant, spread_offset_seconds, spread_retry_instant

ROOT = Path(__file__).resolve().parents[2]


def test_known_value_is_pinned() -> None:
    # Pinned so a change of hash or byte order is caught: it would move every subscription's moment.
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"sub_123").digest()[:8], "big") % 900
    assert spread_offset_seconds("sub_123") == expected


def test_same_in_another_process_with_another_hash_seed() -> None:
    code = "from workflows.spread import spread_offset_seconds as f; print(f('sub_123'), f('sub_456', 60))"
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outputs.add(run.stdout.strip())
    assert outputs == {f"{spread_offset_seconds('sub_123')} {spread_offset_seconds('sub_456', 60)}"}


@given(key=st.text(min_size=1, max_size=40), window=st.integers(1, 86_400))
def test_in_range_and_deterministic(key: str, window: int) -> None:
    offset = spread_offset_seconds(key, window)
    assert 0 <= offset < window
    assert offset == spread_offset_seconds(key, window)


def test_roughly_uniform_over_the_window() -> None:
    buckets = [0] * 15  # one per minute of the default 15-minute window
    for n in range(15_000):
        buckets[spread_offset_seconds(f"sub_{n}") // 60] += 1
    assert min(buckets) > 800 and max(buckets) < 1200


def test_spread_instant() -> None:
    due = datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert spread_instant(due, "sub_1") == due + timedelta(seconds=spread_offset_seconds("sub_1"))
    with pytest.raises(ValueError, match="due_at"):
        spread_instant(datetime(2026, 1, 1, 14), "sub_1")


@pytest.mark.parametrize(("key", "window", "name"), [("", 900, "key"), (None, 900, "key"), ("k", 0, "window_seconds"), ("k", True, "window_seconds")])
def test_bad_arguments(key, window, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        spread_offset_seconds(key, window)


def test_a_retry_is_spread_by_subscription_and_attempt_within_the_window() -> None:
    retry_at = datetime(2027, 3, 4, 15, 0, tzinfo=UTC)
    moments = {spread_retry_instant(retry_at, "sub_123", attempt) for attempt in range(2, 10)}
    assert all(retry_at <= m < retry_at + timedelta(seconds=900) for m in moments)
    assert len(moments) > 1  # the attempts of one subscription do not share a moment
    assert spread_retry_instant(retry_at, "sub_123", 2) == spread_retry_instant(retry_at, "sub_123", 2)
    assert spread_retry_instant(retry_at, "sub_123", 2) == retry_at + timedelta(seconds=spread_offset_seconds("sub_123:retry:2"))
    with pytest.raises(ValueError, match="attempt"):
        spread_retry_instant(retry_at, "sub_123", 0)
