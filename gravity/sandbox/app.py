"""The sandbox as an ASGI app: emergepay's paths under `/virtualterminal/v1`, and `/_sandbox/` for tests.

Every API call goes through one pipeline, in this order: merchant and token (404 / 401), JSON body
(400), idempotency key (replay a finished identical request, 409 for another body or a request still
running), injected fault (500, 429, 404, slow, lost), the gateway rule in a part of `SandboxState`, storing the
answer under the key, postbacks, and the answer (or, for a "lost" fault, a dropped connection after
the transaction was committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gravity import conventions as C
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.errors import ApiError, Handled
from gravity.sandbox.state import SandboxState

BASE_PATH = "/virtualterminal/v1"
_TRANSPORT_KEY = "sandbox.transport"
# Answers that are not stored under an idempotency key: the request was not (or not finally) processed.
_NOT_STORED = {409, 429}


def _without_amounts(payload: Any) -> Any:
    """The answer with every amount field empty (the "amountless" fault)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("transactionResponse"), dict):
        return payload
    response = {k: ("" if k in C.AMOUNT_FIELDS else v) for k, v in payload["transactionResponse"].items()}
    return {**payload, "transactionResponse": response}


def _error(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": error.message}, status_code=error.status, headers=headers)


class _LostResponse(Response):
    """Drop the connection without an answer (the work is already committed)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get(_TRANSPORT_KEY)
        if transport is not None:
            transport.abort()  # no status line at all, like a connection cut mid-flight
            await asyncio.sleep(0.01)  # let uvicorn see the connection is gone before we return
            return
        # Fallback for servers that do not expose the transport: promise a body, send none, return.
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        })


def create_app(state: SandboxState, postman: Postman) -> ASGIApp:
    """Build the ASGI app around one state and one postback sender."""

    async def pipeline(
        request: Request,
        endpoint: str,
        handle: Callable[[str, Any], Handled],
        *,
        has_body: bool = True,
        idempotent: bool = True,
    ) -> Response:
        oid = request.path_params["oid"]
        try:
            state.merchants.check_auth(oid, request.headers.get("authorization"))
        except ApiError as error:
            return _error(error)
        raw = await request.body() if has_body else b""
        body: Any = None
        if has_body:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return _error(ApiError(400, "body must be JSON"))
        key = request.headers.get("idempotency-key") if idempotent else None
        scope_name = request.url.path  # keys are kept per endpoint (path, which includes a device name)
        if key:
            try:
                replay = state.keys.begin(oid, scope_name, key, raw)
            except ApiError as error:
                return _error(error)
            if replay is not None:
                return Response(replay[1], status_code=replay[0], media_type="application/json")
        stored = False
        try:
            fault = state.faults.take(endpoint, oid)
            if fault is not None and fault.kind == "500":
                return _error(ApiError(500, "internal server error (injected)"))
            if fault is not None and fault.kind == "429":
                return _error(
                    ApiError(429, "too many requests (injected)"),
                    headers={"retry-after": str(C.RATE_LIMIT_RETRY_AFTER_SECONDS)},
                )
            if fault is not None and fault.kind == "404":
                return _error(ApiError(404, C.TRANSACTION_NOT_FOUND_MESSAGE))
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
                postman.send(postbacks)
            if fault is not None and fault.kind == "lost":
                return _LostResponse()
            return Response(text, status_code=status, media_type="application/json")
        finally:
            if key and not stored:
                state.keys.abandon(oid, scope_name, key)

    # --- emergepay -------------------------------------------------------------------------------
    async def tokenized_payment(request: Request) -> Response:
        return await pipeline(request, "tokenizedPayment", state.payments.tokenized_payment)

    async def tokenized_refund(request: Request) -> Response:
        return await pipeline(request, "tokenizedRefund", state.payments.tokenized_refund)

    async def void(request: Request) -> Response:
        return await pipeline(request, "void", state.payments.void)

    async def tokenize(request: Request) -> Response:
        return await pipeline(request, "tokenize", state.payments.tokenize)

    async def bulk(request: Request) -> Response:
        return await pipeline(request, "bulk", state.payments.bulk)

    async def lookup(request: Request) -> Response:
        external_id = request.path_params["external_id"]
        return await pipeline(
            request, "lookup", lambda oid, _: state.payments.lookup(oid, external_id), has_body=False, idempotent=False
        )

    async def devices(request: Request) -> Response:
        return await pipeline(
            request, "devices", lambda oid, _: state.terminals.list_devices(oid), has_body=False, idempotent=False
        )

    async def terminal_start(request: Request) -> Response:
        device = request.path_params["device"]
        return await pipeline(request, "deviceStart", lambda oid, body: state.terminals.start(oid, device, body))

    async def terminal_cancel(request: Request) -> Response:
        device, external_id = request.path_params["device"], request.path_params["external_id"]
        return await pipeline(
            request, "deviceCancel", lambda oid, _: state.terminals.cancel(oid, device, external_id),
            has_body=False, idempotent=False,
        )

    # --- /_sandbox/ control surface ----------------------------------------------------------------
    def control(handler: Callable[[Request, dict[str, Any]], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                data = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                return _error(ApiError(400, "body must be JSON"))
            if not isinstance(data, dict):
                return _error(ApiError(400, "body must be a JSON object"))
            try:
                return JSONResponse(await handler(request, data))
            except ApiError as error:
                return _error(error)
            except (KeyError, TypeError, ValueError) as error:
                return _error(ApiError(400, f"bad control request: {error}"))

        return endpoint

    async def health(request: Request, data: dict[str, Any]) -> Any:
        return {"ok": True, "oids": sorted(state.merchants), "now": state.clock.now().isoformat()}

    async def reset(request: Request, data: dict[str, Any]) -> Any:
        state.reset()
        postman.reset()
        return {"ok": True}

    async def transactions(request: Request, data: dict[str, Any]) -> Any:
        return {"transactions": state.book.rows(request.query_params.get("oid"))}

    async def card_decline(request: Request, data: dict[str, Any]) -> Any:
        reason = C.DeclineReason(data.get("reason", C.DeclineReason.GENERIC))
        count = int(data.get("count", 1))
        state.vault.script(request.path_params["card_ref"], {"kind": "decline", "reason": reason.value, "count": count})
        return {"ok": True}

    async def card_partial(request: Request, data: dict[str, Any]) -> Any:
        step = {"kind": "partial", "approved_cents": int(data["approved_cents"]), "count": int(data.get("count", 1))}
        state.vault.script(request.path_params["card_ref"], step)
        return {"ok": True}

    async def card_expire(request: Request, data: dict[str, Any]) -> Any:
        state.vault.script(request.path_params["card_ref"], {"kind": "expire"})
        return {"ok": True}

    async def faults(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "POST":
            state.faults.add(
                str(data["endpoint"]), str(data["kind"]), int(data.get("count", 1)),
                data.get("delay_s"), data.get("oid"),
            )
        elif request.method == "DELETE":
            state.faults.clear()
        return {"faults": state.faults.listed()}

    def device_action(action: str) -> Callable[[Request, dict[str, Any]], Awaitable[Any]]:
        async def run(request: Request, data: dict[str, Any]) -> Any:
            oid, device = request.path_params["oid"], request.path_params["device"]
            if action == "present":
                approved = data.get("approved_cents")
                _, answer, postbacks = state.terminals.present_card(
                    oid, device, outcome=data.get("outcome"), card_number=data.get("card_number"),
                    expiry_mmyy=data.get("expiry_mmyy"), reason=data.get("reason"),
                    approved_cents=int(approved) if approved is not None else None,
                    entry_method=data.get("entry_method"),
                    tip_cents=data.get("tip_cents"), surcharge_cents=data.get("surcharge_cents"),
                )
            elif action == "cancel":
                _, answer, postbacks = state.terminals.cancel_on_device(oid, device)
            elif action == "walk_away":
                _, answer, postbacks = state.terminals.walk_away(oid, device)
            else:
                return state.terminals.set_device(oid, device, bool(data.get("online", True)))
            if postbacks:
                postman.send(postbacks)
            return answer

        return run

    async def settle(request: Request, data: dict[str, Any]) -> Any:
        return {"closed": state.settlement.settle(data.get("oid"))}

    async def clock(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "POST":
            if "offset_s" in data:
                state.clock.set_offset(float(data["offset_s"]))
            if "advance_s" in data:
                state.clock.advance(float(data["advance_s"]))
        return {"now": state.clock.now().isoformat(), "offset_s": state.clock.offset_s}

    async def postbacks(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "POST":
            postman.configure(**{k: data.get(k) for k in (
                "url", "secret", "hold", "duplicate_next", "bad_signature_next", "backoff_base_s", "max_attempts"
            )})
        return {"config": postman.describe(), "deliveries": list(postman.log)}

    async def postbacks_release(request: Request, data: dict[str, Any]) -> Any:
        return {"released": postman.release(str(data.get("order", "reverse")))}

    api = BASE_PATH + "/orgs/{oid}"
    routes = [
        Route(api + "/transactions/tokenizedPayment", tokenized_payment, methods=["PUT"]),
        Route(api + "/transactions/tokenizedRefund", tokenized_refund, methods=["PUT"]),
        Route(api + "/transactions/void", void, methods=["PUT"]),
        Route(api + "/transactions/tokenize", tokenize, methods=["PUT"]),
        Route(api + "/transactions/tokenized/bulk", bulk, methods=["POST"]),
        Route(api + "/transactions/{external_id}", lookup, methods=["GET"]),
        Route(api + "/devices", devices, methods=["GET"]),
        Route(api + "/devices/{device}/transactions", terminal_start, methods=["POST"]),
        Route(api + "/devices/{device}/transactions/{external_id}", terminal_cancel, methods=["DELETE"]),
        Route("/_sandbox/health", control(health), methods=["GET"]),
        Route("/_sandbox/reset", control(reset), methods=["POST"]),
        Route("/_sandbox/transactions", control(transactions), methods=["GET"]),
        Route("/_sandbox/cards/{card_ref}/decline", control(card_decline), methods=["POST"]),
        Route("/_sandbox/cards/{card_ref}/partial", control(card_partial), methods=["POST"]),
        Route("/_sandbox/cards/{card_ref}/expire", control(card_expire), methods=["POST"]),
        Route("/_sandbox/faults", control(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/devices/{oid}/{device}", control(device_action("set")), methods=["POST"]),
        Route("/_sandbox/devices/{oid}/{device}/present", control(device_action("present")), methods=["POST"]),
        Route("/_sandbox/devices/{oid}/{device}/cancel", control(device_action("cancel")), methods=["POST"]),
        Route("/_sandbox/devices/{oid}/{device}/walk_away", control(device_action("walk_away")), methods=["POST"]),
        Route("/_sandbox/settle", control(settle), methods=["POST"]),
        Route("/_sandbox/clock", control(clock), methods=["GET", "POST"]),
        Route("/_sandbox/postbacks", control(postbacks), methods=["GET", "POST"]),
        Route("/_sandbox/postbacks/release", control(postbacks_release), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        yield
        await postman.aclose()

    inner = Starlette(routes=routes, lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's `send` is a bound method of the request cycle, which holds the transport; keeping
        # it in the scope lets a "lost response" fault cut the connection before any status line.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None and scope["type"] == "http":
            scope[_TRANSPORT_KEY] = transport
        await inner(scope, receive, send)

    return app
