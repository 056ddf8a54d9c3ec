"""The control surface's money routes: every committed transaction, and settling the open batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gravity.sandbox.routers.dependencies import ControlBody, State
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox", route_class=ControlRoute)


@router.get("/transactions")
async def transactions(request: Request, state: State) -> dict[str, Any]:
    return {"transactions": state.book.rows(request.query_params.get("oid"))}


@router.post("/settle")
async def settle(data: ControlBody, state: State) -> dict[str, Any]:
    return {"closed": state.settlement.settle(data.get("oid"))}
