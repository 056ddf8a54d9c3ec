"""What every route needs: the bearer check, and the engine, Temporal client and settings the app
was built with (kept on `app.state`, so tests build apps over their own servers)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from temporalio.client import Client

from api.errors import STAFF_HEADER, forbidden, invalid, unauthorized
from api.fields import CleanText
from api.text import CLEAN_RULE, first_unsafe
from foundation.card_numbers import LOOKS_LIKE_A_CARD_NUMBER, holds_card_number
from foundation.scopes import SCOPE_DOCS, Caller, allowed
from foundation.settings import Settings
from gravity.directory import GatewayDirectory
from operations.tokens import authenticate as authenticate_stored, settings_caller

MAX_STAFF_LENGTH = 100
TOKEN_DOC = (
    "`Authorization: Bearer <token>`: a token made with `billing token create` (`vbt_<id>_<secret>`), or BILLING_API_TOKEN "
    "(scope billing, every location). A token's scope says which routes it may call (403 naming the scope otherwise): "
    + "; ".join(f"**{scope.value}**: {doc}" for scope, doc in SCOPE_DOCS.items())
    + ". Its locations say what it reaches: anything at another location answers 404, as an unknown id does, "
    "and GET /events returns only the events of its locations."
)
STAFF_DOC = (
    f"The staff member the billing system acts for (1 to {MAX_STAFF_LENGTH} characters of clean text; 400 otherwise); "
    "recorded with the token's name on every command and money movement."
)

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description=TOKEN_DOC,
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


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header value, or None."""
    if not authorization:
        return None
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def authenticate(app: Any, presented: str) -> Caller | None:
    """The caller a bearer token stands for: BILLING_API_TOKEN (compared in constant time), else a
    stored token (`operations.tokens`); None when it is neither, or revoked."""
    if hmac.compare_digest(presented.encode(), app.state.api_token.encode()):
        return settings_caller()
    return authenticate_stored(app.state.runtime.engine, presented)


def current_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    staff: Annotated[CleanText | None, Header(alias=STAFF_HEADER, min_length=1, max_length=MAX_STAFF_LENGTH, description=STAFF_DOC)] = None,
) -> Caller:
    """Every route but /health and the postbacks depends on this: who is calling, whether its scope
    allows this route (403 naming the scope), and the staff member it names. The token never
    appears in an answer or log."""
    if credentials is None:
        raise unauthorized("missing bearer credential: send Authorization: Bearer <token>")
    caller: Caller | None = getattr(request.state, "caller", None)  # the idempotency middleware's check
    if caller is None:
        caller = authenticate(request.app, credentials.credentials)
    if caller is None:
        raise unauthorized("wrong bearer credential")
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if not allowed(caller.scope, request.method, path):
        raise forbidden(caller.scope, f"{request.method} {path}")
    return replace(caller, staff=staff)


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
    if unsafe is not None:
        return f"must hold {CLEAN_RULE} (found {unsafe})"
    return LOOKS_LIKE_A_CARD_NUMBER if holds_card_number(key) else None


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
