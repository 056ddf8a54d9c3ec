"""One error shape for every refusal of the HTTP API, so the billing system handles them all alike:

    {"error": "validation", "message": "...", "fields": [{"field": "start_date", "reason": "..."}]}

`error` is one of unauthorized, forbidden, validation, refused, not_found, conflict, method_not_allowed,
payload_too_large (and unavailable, from /health and the postback receiver). "validation" means the
request breaks a rule the OpenAPI schema states; "refused" means it is well formed and the business
rules (or the current data) refuse it. Every refusal names at least one field. A refusal is raised
as `ApiError` before anything is written (validation happens first, writes last). A missing required
header (the `Idempotency-Key` of a POST that can move money) is a 400 "validation" naming it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from foundation.card_numbers import LOOKS_LIKE_A_CARD_NUMBER
from operations.refusals import Refusal


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx answer of the API."""

    error: str
    message: str
    fields: list[FieldError] = []


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, fields: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields or []

    def body(self) -> dict[str, Any]:
        return error_body(self.error, self.message, self.fields)


def error_body(error: str, message: str, fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {"error": error, "message": message, "fields": [{"field": f, "reason": r} for f, r in (fields or [])]}


def invalid(field: str, reason: str) -> ApiError:
    """422: a value the caller sent is wrong."""
    return ApiError(422, "validation", f"{field}: {reason}", [(field, reason)])


def refused(field: str, reason: str) -> ApiError:
    """422: the request was well formed but the business rules refuse it."""
    return ApiError(422, "refused", f"{field}: {reason}", [(field, reason)])


def conflict(field: str, reason: str) -> ApiError:
    """409: the request collides with the current state (a duplicate, a finished subscription)."""
    return ApiError(409, "conflict", f"{field}: {reason}", [(field, reason)])


def not_found(field: str, reason: str) -> ApiError:
    return ApiError(404, "not_found", reason, [(field, reason)])


def from_refusal(error: Refusal) -> ApiError:
    """An operation's refusal as the API answers it: 409 for a conflict, 404 for an unknown
    resource named in the path, 503 for a service that could not be asked, else 422; the message
    reads as in the CLI."""
    if error.kind == "unavailable":
        return ApiError(503, "unavailable", str(error), [(error.field, error.reason)])
    if error.kind == "conflict":
        return conflict(error.field, error.reason)
    if error.kind == "not_found":
        return not_found(error.field, error.reason)
    return refused(error.field, error.reason)


def unauthorized(message: str) -> ApiError:
    """401 naming the Authorization header (the only credential the API reads)."""
    return ApiError(401, "unauthorized", message, [("Authorization", message)])


def forbidden(scope: str, route: str) -> ApiError:
    """403: the token is genuine but its scope does not allow the route (named with the scope)."""
    reason = f"a token of scope {scope} may not call {route}"
    return ApiError(403, "forbidden", reason, [("Authorization", reason)])


#: The `responses=` entry routes declare so the OpenAPI schema documents the error shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, wrong or revoked bearer credential (error: unauthorized)"},
    403: {"model": ErrorBody, "description": "The token's scope does not allow this route (error: forbidden, naming the scope)"},
    404: {"model": ErrorBody, "description": "Unknown id in the path (error: not_found)"},
    409: {"model": ErrorBody, "description": "Conflicts with the current state or an earlier request (error: conflict)"},
    422: {"model": ErrorBody, "description": "A field breaks the schema (error: validation) or the business rules refuse the request (error: refused)"},
}


def refusals(*, refused: str | None = None, conflict: str | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's own `responses=`: what its business rules refuse (422 "refused") and what collides
    with the current state (409 "conflict"), shown in the schema beside the generic answers."""
    responses: dict[int | str, dict[str, Any]] = {}
    if refused:
        responses[422] = {"model": ErrorBody, "description": f"error: validation (a field breaks the schema) or refused: {refused}"}
    if conflict:
        responses[409] = {"model": ErrorBody, "description": f"error: conflict: {conflict}"}
    return responses


class PayloadTooLarge(StarletteHTTPException):
    """The body grew past the limit while it was read (see `api.body_limit`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: larger than the limit of {limit} bytes")
        self.limit = limit


def too_large(limit: int) -> JSONResponse:
    """413 naming the limit; the connection is closed, since the rest of the body is never read."""
    reason = f"larger than the limit of {limit} bytes"
    return JSONResponse(error_body("payload_too_large", f"body: {reason}", [("body", reason)]), status_code=413, headers={"Connection": "close"})


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _field_error(item: dict[str, Any]) -> tuple[str, str]:
    if item.get("type") == "json_invalid":
        detail = (item.get("ctx") or {}).get("error", "")
        return "body", f"not valid JSON{': ' + str(detail) if detail else ''}"
    return _field_of(tuple(item.get("loc", ()))), str(item.get("msg", "invalid")).removeprefix("Value error, ")


def _missing_header(item: dict[str, Any]) -> bool:
    loc = tuple(item.get("loc", ()))
    return item.get("type") == "missing" and len(loc) == 2 and loc[0] == "header"


def _is_header(item: dict[str, Any], name: str) -> bool:
    loc = tuple(item.get("loc", ()))
    return len(loc) >= 2 and loc[0] == "header" and str(loc[1]).lower() == name.lower()


#: The header a billing system names its staff member in (`api.deps` documents it).
STAFF_HEADER = "X-Billing-Staff"

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path: a 405's `Allow` must list them all,
    not only those of the first route whose path matched (routers nest, so each method is tried)."""
    routes = request.app.router.routes
    return [method for method in METHODS if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, error: Refusal) -> JSONResponse:
        # A route need not catch an operation's refusal: it is answered here, the same everywhere.
        return await _api_error(request, from_refusal(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        staff = [_field_error(item) for item in error.errors() if _is_header(item, STAFF_HEADER)]
        if staff:
            # A bad staff header is the caller's configuration, not the request's data: 400, like a missing key.
            return JSONResponse(error_body("validation", "; ".join(f"{f}: {r}" for f, r in staff), staff), status_code=400)
        missing = [_field_of(tuple(item["loc"])) for item in error.errors() if _missing_header(item)]
        if missing:
            # A required header (the Idempotency-Key of a money POST) is a 400 of its own, before the body.
            fields = [(name, "this header is required") for name in missing]
            return JSONResponse(error_body("validation", "; ".join(f"{f}: {r}" for f, r in fields), fields), status_code=400)
        fields = [_field_error(item) for item in error.errors()]
        message = "; ".join(f"{f}: {r}" for f, r in fields) or "invalid request"
        # No JSON Schema can state the Luhn check, so a card number in a well-formed field is a
        # business refusal, like any rule the schema does not show.
        kind = "refused" if fields and all(reason == LOOKS_LIKE_A_CARD_NUMBER for _, reason in fields) else "validation"
        return JSONResponse(error_body(kind, message, fields), status_code=422)

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(request: Request, error: PayloadTooLarge) -> JSONResponse:
        return too_large(error.limit)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 405:
            allowed = allowed_methods(request)
            reason = f"{request.method} is not served at this path; allowed: {', '.join(allowed)}"
            return JSONResponse(error_body("method_not_allowed", reason, [("method", reason)]), status_code=405, headers={"Allow": ", ".join(allowed)})
        if error.status_code == 404:
            reason = f"no route {request.url.path}"
            return JSONResponse(error_body("not_found", reason, [("path", reason)]), status_code=404)
        if error.status_code == 400:
            # FastAPI's answer to a body it could not decode (not UTF-8): a bad field like any other.
            reason = "not valid JSON in UTF-8"
            return JSONResponse(error_body("validation", f"body: {reason}", [("body", reason)]), status_code=422)
        kind = {401: "unauthorized"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(kind, str(error.detail), [("request", str(error.detail))]), status_code=error.status_code, headers=error.headers)
