"""Errors of the Gravity client, by what the caller must do about them.

- `PermanentGravityError`: retrying cannot help (bad request, bad credentials, not found). A Temporal
  activity lists these as non-retryable; they surface as incidents.
- `TransientGravityError`: the request was not processed (409 conflict, 429, 5xx, no connection):
  retry with backoff and the same external id.
- `UnknownOutcome`: the request left us and no answer came back. The charge may or may not exist:
  look the external id up before anything else, never charge again blind.

A decline is none of these: it is a `TransactionResult`. Messages never carry the bearer token, a
card number or a security code (`scrub` removes them as a second line of defence).
"""

from __future__ import annotations

import re

_CARDLIKE = re.compile(r"\d[\d -]{10,}\d")


def scrub(text: str, *secrets: str | None) -> str:
    """Remove secrets (token, card number, CVV) and anything card-number-like from a message.

    Long secrets are removed wherever they appear; short ones (a CVV) only as a whole word, so a
    three-digit code does not eat parts of ordinary words.
    """
    for secret in secrets:
        if not secret:
            continue
        if len(secret) >= 8:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", "***", text)
    return _CARDLIKE.sub(lambda m: "***" if sum(c.isdigit() for c in m.group()) >= 12 else m.group(), text)


class GravityError(Exception):
    """Any failure talking to Gravity (never a decline)."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.endpoint = endpoint


# --- permanent ---------------------------------------------------------------------------------
class PermanentGravityError(GravityError):
    """Retrying the same request cannot succeed."""


class BadRequest(PermanentGravityError):
    """HTTP 400: the request is wrong (server `message` kept)."""


class ExternalIdReused(BadRequest):
    """HTTP 400: the externalTransactionId was used before (look it up instead). [ours]

    The `*_safely` methods never let it out: they look the id up, and raise `UnknownOutcome` when
    the lookup cannot find it, because a used id may name a sale, refund or void that happened."""


class RefundExceedsRemaining(BadRequest):
    """HTTP 400: the refund is larger than what is left of the sale. [ours]"""


class VoidNotPossible(BadRequest):
    """HTTP 400: the sale is settled, already voided or partly refunded: refund instead. [ours]"""


class BadCredentials(PermanentGravityError):
    """HTTP 401/403: the token is wrong or not valid for this OID: a configuration incident."""


class NotFound(PermanentGravityError):
    """HTTP 404 where absence is an error: unknown OID, unknown device, unknown terminal session."""


# --- transient ---------------------------------------------------------------------------------
class TransientGravityError(GravityError):
    """The request was not processed; retry later with the same external id."""


class IdempotencyConflict(TransientGravityError):
    """HTTP 409: same idempotency key with another body, or the original is still running."""


class DeviceBusy(TransientGravityError):
    """HTTP 409 from a terminal that is running another transaction or is offline. [ours]"""


class RateLimited(TransientGravityError):
    """HTTP 429."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.retry_after = retry_after


class ServerError(TransientGravityError):
    """HTTP 5xx (or an answer we could not read as JSON)."""


class ConnectionFailed(TransientGravityError):
    """No connection could be made: the request was never sent."""


class ReadInterrupted(TransientGravityError):
    """A read-only call (lookup, list devices) timed out or lost its answer: safe to repeat."""


# --- unknown -----------------------------------------------------------------------------------
class UnknownOutcome(GravityError):
    """The request was sent but no answer arrived (timeout, dropped connection).

    Carries the external id to look up. The caller retries with the SAME external id, through the
    client's `*_safely` methods, which look it up before sending anything again.
    """

    def __init__(self, message: str, *, external_id: str | None = None, status: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.external_id = external_id
