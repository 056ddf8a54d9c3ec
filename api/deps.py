"""What every route needs: the bearer check, and the engine, Temporal client and settings the app
was built with (kept on `app.state`, so tests build apps over their own servers)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from temporalio.client import Client

from api.errors import invalid, unauthorized
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


def idempotency_key(
    key: str | None = Header(
        default=None,
        alias=IDEMPOTENCY_HEADER,
        description="Any unique string (a UUID). Repeating a POST with the same key and body returns the first answer; "
        "the same key with another body is refused with 409.",
    ),
) -> str | None:
    """Documents the header in the OpenAPI schema; the work itself is done by `IdempotencyMiddleware`."""
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise invalid(IDEMPOTENCY_HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters")
    return key


def money_key(
    key: str = Header(
        alias=IDEMPOTENCY_HEADER,
        description="Required: this request can move money. Any unique string (a UUID); send the same key to retry, even after "
        "a lost answer or a crash: the same key is the same movement, never a second one. The same key with another body is refused with 409.",
    ),
) -> str:
    """The required key of a POST that can move money (absent: 400, see `api.errors`); it also names
    the movement's workflow, so a retry after a crash resumes it."""
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise invalid(IDEMPOTENCY_HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters")
    return key
