"""The pipeline every emergepay API call goes through, in this order: merchant and token (404 / 401),
JSON body (400), idempotency key (replay a finished identical request, 409 for another body or a
request still running), injected fault (500, 429, 404, slow, lost), the gateway rule, storing the
answer under the key, postbacks, and the answer (or, for a "lost" fault, a dropped connection after
the transaction was committed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from gravity import conventions as C
from gravity.sandbox.errors import ApiError, Handled
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.state import SandboxState

# Where the app keeps the connection's transport in the request scope (see `create_app`).
TRANSPORT_KEY = "sandbox.transport"
# Answers that are not stored under an idempotency key: the request was not (or not finally) processed.
_NOT_STORED = {409, 429}

Rule = Callable[[str, Any], Handled]  # (oid, parsed body) -> the gateway's answer


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer Gravity gives: `{"message": ...}` with the error's status."""
    return JSONResponse({"message": error.message}, status_code=error.status, headers=headers)


class LostResponse(Response):
    """Drop the connection without an answer (the work is already committed)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get(TRANSPORT_KEY)
        if transport is not None:
            transport.abort()  # no status line at all, like a connection cut mid-flight
            await asyncio.sleep(0.01)  # let uvicorn see the connection is gone before we return
            return
        # Fallback for servers that do not expose the transport: promise a body, send none, return.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )


class ApiPipeline:
    """Runs one API call of a merchant through the checks, the fault, the rule and the postbacks."""

    def __init__(self, state: SandboxState, postman: Postman) -> None:
        self._state = state
        self._postman = postman

    async def call(self, request: Request, endpoint: str, handle: Rule, *, has_body: bool = True, idempotent: bool = True) -> Response:
        """`endpoint` names the call for faults; `handle` is the gateway rule it ends in."""
        state = self._state
        oid = request.path_params["oid"]
        try:
            state.merchants.check_auth(oid, request.headers.get("authorization"))
        except ApiError as error:
            return error_response(error)
        raw = await request.body() if has_body else b""
        body: Any = None
        if has_body:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return error_response(ApiError(400, "body must be JSON"))
        key = request.headers.get("idempotency-key") if idempotent else None
        scope_name = request.url.path  # keys are kept per endpoint (path, which includes a device name)
        if key:
            try:
                replay = state.keys.begin(oid, scope_name, key, raw)
            except ApiError as error:
                return error_response(error)
            if replay is not None:
                return Response(replay[1], status_code=replay[0], media_type="application/json")
        stored = False
        try:
            fault = state.faults.take(endpoint, oid)
            if fault is not None and fault.kind == "500":
                return error_response(ApiError(500, "internal server error (injected)"))
            if fault is not None and fault.kind == "429":
                return error_response(
                    ApiError(429, "too many requests (injected)"),
                    headers={"retry-after": str(C.RATE_LIMIT_RETRY_AFTER_SECONDS)},
                )
            if fault is not None and fault.kind == "404":
                return error_response(ApiError(404, C.TRANSACTION_NOT_FOUND_MESSAGE))
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
            try:
                status, payload, postbacks = handle(oid, body)
            except ApiError as error:
                status, payload, postbacks = error.status, {"message": error.message}, []
            if fault is not None and fault.kind == "amountless":
                payload = _without_amounts(payload)
            text = json.dumps(payload)
            if key and status not in _NOT_STORED:
                state.keys.finish(oid, scope_name, key, status, text)
                stored = True
            if postbacks:
                self._postman.send(postbacks)
            if fault is not None and fault.kind == "lost":
                return LostResponse()
            return Response(text, status_code=status, media_type="application/json")
        finally:
            if key and not stored:
                state.keys.abandon(oid, scope_name, key)


def _without_amounts(payload: Any) -> Any:
    """The answer with every amount field empty (the "amountless" fault)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("transactionResponse"), dict):
        return payload
    response = {k: ("" if k in C.AMOUNT_FIELDS else v) for k, v in payload["transactionResponse"].items()}
    return {**payload, "transactionResponse": response}
