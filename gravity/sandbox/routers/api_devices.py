"""emergepay's terminal endpoints: list a merchant's devices, push a transaction to one, cancel it there."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gravity.sandbox.routers.dependencies import Pipeline, State
from gravity.sandbox.routers.routes import SandboxRoute

router = APIRouter(prefix="/orgs/{oid}/devices", route_class=SandboxRoute)


@router.get("")
async def devices(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "devices", lambda oid, _: state.terminals.list_devices(oid), has_body=False, idempotent=False)


@router.post("/{device}/transactions")
async def terminal_start(request: Request, device: str, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "deviceStart", lambda oid, body: state.terminals.start(oid, device, body))


@router.delete("/{device}/transactions/{external_id}")
async def terminal_cancel(request: Request, device: str, external_id: str, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(
        request,
        "deviceCancel",
        lambda oid, _: state.terminals.cancel(oid, device, external_id),
        has_body=False,
        idempotent=False,
    )
