"""Bookkeeping refusals that no retry can mend, raised to Temporal as incidents for a person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from books.answers import UnstatedPartialApproval


@contextmanager
def unbookable_approvals() -> Iterator[None]:
    """An approval the books cannot book without guessing its amount becomes a non-retryable
    `GravityPermanent` error: the same answer would fail the same way on every retry."""
    try:
        yield
    except UnstatedPartialApproval as error:
        raise ApplicationError(str(error), type="GravityPermanent", non_retryable=True) from None
