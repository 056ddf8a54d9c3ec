"""What every route needs: the bearer check, and the engine, Temporal client and settings the app
was built with (kept on `app.state`, so tests build apps over their own servers)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from temporalio.client import Client

from api.errors import invalid, unauthorized
from api.fields import CleanText
from api.text import CLEAN_RULE, first_unsafe
from foundation.settings import Settings
from gravity.directory import GatewayDirectory

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The API token (BILLING_API_TOKEN) as `Authorization: Bearer <token>`.",
)


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    temporal: Client
    settings: Settings
    task_queue: str
    gateways: GatewayDirectory


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def token_matches(expected: str, authorization: str | None) -> bool:
    """Constant-time check of an `Authorization: Bearer ...` header value against the API token."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> None:
    """Every route but /health depends on this. The token itself never appears in an answer or log."""
    if credentials is None:
        raise unauthorized("missing bearer credential: send Authorization: Bearer <token>")
    expected = request.app.state.api_token
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise unauthorized("wrong bearer credential")


IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
#: What the schema says about the header on every POST (the rules `api.idempotency` keeps).
KEY_RULES = (
    f"1 to {MAX_KEY_LENGTH} characters with {CLEAN_RULE}; any unique string (a UUID). "
    "Repeating a POST with the same key, path and JSON body returns the first 2xx answer as it was, with `Idempotent-Replayed: true`; "
    "the same key with another path or body is refused with 409, and so is a repeat while the first request is still running. "
    "A refused request (4xx) keeps no key, so the caller may fix it and retry with the same key. "
    "A key whose request died unanswered is taken over by a retry with the same body after the lease (BILLING_IDEMPOTENCY_LEASE_S)."
)
MONEY_KEY_RULES = (
    "Required (400 without it): this request can move money, and the key names the movement's workflow, "
    "so a retry with the same key, even after a lost answer or a crash, joins the same movement and never makes a second one. "
)


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an idempotency key, or None; one rule for the middleware and the routes."""
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        return f"must be 1 to {MAX_KEY_LENGTH} characters"
    unsafe = first_unsafe(key)
    return None if unsafe is None else f"must hold {CLEAN_RULE} (found {unsafe})"


def _checked(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise invalid(IDEMPOTENCY_HEADER, problem)
    return key


def idempotency_key(
    key: Annotated[CleanText | None, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=MAX_KEY_LENGTH, description=KEY_RULES)] = None,
) -> str | None:
    """Documents the header in the OpenAPI schema; the work itself is done by `IdempotencyMiddleware`."""
    return None if key is None else _checked(key)


def money_key(
    key: Annotated[CleanText, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=MAX_KEY_LENGTH, description=MONEY_KEY_RULES + KEY_RULES)],
) -> str:
    """The required key of a POST that can move money (absent: 400, see `api.errors`); it also names
    the movement's workflow, so a retry after a crash resumes it."""
    return _checked(key)
