"""The sandbox as an ASGI app: emergepay's paths under `/virtualterminal/v1`, and `/_sandbox/` for tests.

The routes live in `gravity.sandbox.routers`, one router per concern; every API call goes through
`gravity.sandbox.pipeline`, and every gateway rule is a part of `SandboxState`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pendulum
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gravity.sandbox.clock import CALLERS_TIME, instant
from gravity.sandbox.errors import ApiError
from gravity.sandbox.pipeline import TRANSPORT_KEY, ApiPipeline, error_response
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.routers import (
    api_devices,
    api_transactions,
    control_cards,
    control_faults,
    control_postbacks,
    control_sandbox,
    control_settlement,
    control_terminals,
)
from gravity.sandbox.state import SandboxState

BASE_PATH = "/virtualterminal/v1"
# Telemetry is the engine's: spans from a stand-in for the gateway would only blur its traces.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}


async def _plain_http_error(request: Request, error: Exception) -> Response:
    """An unknown path or method answers in plain text, as a bare Starlette app does."""
    assert isinstance(error, HTTPException)
    if error.status_code in {204, 304}:
        return Response(status_code=error.status_code, headers=error.headers)
    return PlainTextResponse(error.detail, status_code=error.status_code, headers=error.headers)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    """A refusal raised before an endpoint runs (a control request's body) answers like any other."""
    assert isinstance(error, ApiError)
    return error_response(error)


def _callers_time(scope: Scope) -> pendulum.DateTime | None:
    """The time the request's `X-Sandbox-Clock` header gives (in UTC), if it gives a readable one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-sandbox-clock":
            with contextlib.suppress(ValueError):
                return instant(value.decode("latin-1")).in_timezone("UTC")
    return None


def create_app(state: SandboxState, postman: Postman) -> ASGIApp:
    """Build the ASGI app around one state and one postback sender."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await postman.aclose()
        state.store.stopped()

    inner = FastAPI(
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=_NO_TELEMETRY,
        exception_handlers={HTTPException: _plain_http_error, ApiError: _api_error},
    )
    inner.state.sandbox = state
    inner.state.postman = postman
    inner.state.pipeline = ApiPipeline(state, postman)
    inner.include_router(api_transactions.router, prefix=BASE_PATH)
    inner.include_router(api_devices.router, prefix=BASE_PATH)
    for control in (control_sandbox, control_settlement, control_cards, control_faults, control_terminals, control_postbacks):
        inner.include_router(control.router)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's `send` is a bound method of the request cycle, which holds the transport; keeping
        # it in the scope lets a "lost response" fault cut the connection before any status line.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None and scope["type"] == "http":
            scope[TRANSPORT_KEY] = transport
        told = _callers_time(scope)
        token = CALLERS_TIME.set(told)
        try:
            await inner(scope, receive, send)
        finally:
            CALLERS_TIME.reset(token)

    return app
