"""Retry policies shared by the counter workflows (terminal payment, invoice cancellation).

Every activity gets an explicit policy: Temporal's default retries forever with no list of
permanent errors. Database steps and money moves retry transient faults with the same attempt keys;
refusals (`InvalidCommand`, `NotFound`, `GravityPermanent`) are not retried.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["InvalidCommand", "NotFound"],
)
# Booking a result, voiding or refunding must finish: transient gateway faults are retried with the
# same attempt keys for as long as it takes.
MONEY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=0,
    non_retryable_error_types=["InvalidCommand", "NotFound", "GravityPermanent"],
)
