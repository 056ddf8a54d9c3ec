"""Every workflow's retry policies, in one place (subscription, terminal payment, invoice cancellation,
refund, card deposit).

Every activity gets an explicit policy: Temporal's default retries forever with no list of
permanent errors. Database steps and money moves retry transient faults with the same attempt keys;
refusals (`InvalidCommand`, `NotFound`, `GravityPermanent`) are not retried, and neither is a charge's
or a command's error that can never succeed (`NEVER_SUCCEEDS`).
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

# Errors the same input meets again on every try, by the type name Temporal records for an exception
# an activity raised: bad input to a policy (ValueError) or a lookup that found nothing (LookupError
# and its kinds). Check violations arrive as IntegrityError, which also covers a retryable UNIQUE
# race, so a command activity turns them into `InvalidCommand` itself.
NEVER_SUCCEEDS = ("ValueError", "LookupError", "KeyError", "IndexError")

# The subscription cycle's charge retries transient faults (5xx, 429, connection, unknown outcome) for
# as long as it takes: a gateway outage delays a charge, it never fails or doubles it (the attempt id
# stays the same). An error that can never succeed becomes an incident instead: the loop holds the
# workflow's command lock while it charges, so an endless retry would also hold every command.
CHARGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=0,
    non_retryable_error_types=["GravityPermanent", "NotFound", "InvalidCommand", *NEVER_SUCCEEDS],
)
# The subscription charge's first try, in the worker that holds the workflow task (a local activity):
# one try only. A transient fault hands the charge to an activity task under CHARGE_RETRY, whose
# retries and backoff the server keeps (and time skipping skips), with the same attempt id.
LOCAL_CHARGE_TRY = RetryPolicy(maximum_attempts=1)
# A subscription's status decision must reach its row and the outbox, however long the database is away.
STATUS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=["NotFound", "InvalidCommand"],
)
# A person's command (change card, cancel now, change plan, send a payment to the counter terminal)
# gives up after a few tries and tells them: a subscription's command holds the workflow's command
# lock, so billing and every later command wait for it.
COMMAND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=["NotFound", "InvalidCommand", "GravityPermanent", *NEVER_SUCCEEDS],
)
# Each try of a command's activity: at most a charge and a refund, each a Gravity call with a lookup first.
COMMAND_TRY_TIMEOUT = timedelta(seconds=120)
# The whole command, every try and backoff included: the Update answers within it, error or not.
COMMAND_DEADLINE = timedelta(minutes=5)
# A poll or a cancel at the counter terminal that keeps failing is not fatal: the next poll (or the
# background phase) follows.
BEST_EFFORT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidCommand", "NotFound", "GravityPermanent"],
)
# Voiding a cancelled invoice waits for its compensation; a few tries, then the next round.
VOID_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidCommand", "NotFound", "NotYetCompensated"],
)
# The janitor and the reconciliation: a few tries, then the next scheduled run takes over.
SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidCommand", "NotFound", "GravityPermanent"],
)
# A refund or card deposit asked for at the front desk: its row (and a refund's reservation) is
# written before Gravity is called, so the movement must reach Gravity's answer. Transient faults are
# retried with the same attempt key, looked up before any resend, for as long as it takes (giving up
# would leave a reservation held forever); each try holds its row lock only for its own statements.
# Refusals come back as results, not errors.
FRONT_DESK_MONEY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
    non_retryable_error_types=["InvalidCommand", "NotFound", "GravityPermanent"],
)
