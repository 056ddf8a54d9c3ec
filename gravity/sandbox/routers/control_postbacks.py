"""The control surface's postback routes: where and how postbacks go, every delivery, and held ones released."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gravity.sandbox.routers.dependencies import ControlBody, Mail
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox/postbacks", route_class=ControlRoute)

_SETTINGS = ("url", "secret", "hold", "duplicate_next", "bad_signature_next", "backoff_base_s", "max_attempts")


@router.api_route("", methods=["GET", "POST"])
async def postbacks(request: Request, data: ControlBody, postman: Mail) -> dict[str, Any]:
    if request.method == "POST":
        postman.configure(**{k: data.get(k) for k in _SETTINGS})
    return {"config": postman.describe(), "deliveries": list(postman.log)}


@router.post("/release")
async def release(data: ControlBody, postman: Mail) -> dict[str, Any]:
    return {"released": postman.release(str(data.get("order", "reverse")))}
