"""`GET /health`: the only route without a credential, for load balancers and the compose/k8s probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from api import examples as ex
from api.deps import Runtime, runtime

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.HEALTH))
    status: str
    database: str


@router.get(
    "/health",
    summary="Liveness and database reachability (no credential needed)",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database cannot be reached: status unavailable"}},
)
def health(rt: Runtime = Depends(runtime)) -> JSONResponse:
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means "not ready"
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
