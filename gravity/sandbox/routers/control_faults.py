"""The control surface's fault injection: list, add or clear the faults the next API calls suffer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gravity.sandbox.routers.dependencies import ControlBody, State
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox", route_class=ControlRoute)


@router.api_route("/faults", methods=["GET", "POST", "DELETE"])
async def faults(request: Request, data: ControlBody, state: State) -> dict[str, Any]:
    """POST adds a fault, DELETE clears them all; every method answers with those still pending."""
    if request.method == "POST":
        state.faults.add(
            str(data["endpoint"]),
            str(data["kind"]),
            int(data.get("count", 1)),
            data.get("delay_s"),
            data.get("oid"),
        )
    elif request.method == "DELETE":
        state.faults.clear()
    return {"faults": state.faults.listed()}
