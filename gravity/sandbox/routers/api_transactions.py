"""emergepay's transaction endpoints: card-on-file sales, refunds, voids, saving a card, bulk, lookup."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gravity.sandbox.routers.dependencies import Pipeline, State
from gravity.sandbox.routers.routes import SandboxRoute

router = APIRouter(prefix="/orgs/{oid}/transactions", route_class=SandboxRoute)


@router.put("/tokenizedPayment")
async def tokenized_payment(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "tokenizedPayment", state.payments.tokenized_payment)


@router.put("/tokenizedRefund")
async def tokenized_refund(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "tokenizedRefund", state.payments.tokenized_refund)


@router.put("/void")
async def void(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "void", state.payments.void)


@router.put("/tokenize")
async def tokenize(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "tokenize", state.payments.tokenize)


@router.post("/tokenized/bulk")
async def bulk(request: Request, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "bulk", state.payments.bulk)


@router.get("/{external_id}")
async def lookup(request: Request, external_id: str, pipeline: Pipeline, state: State) -> Response:
    return await pipeline.call(request, "lookup", lambda oid, _: state.payments.lookup(oid, external_id), has_body=False, idempotent=False)
