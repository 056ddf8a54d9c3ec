"""One trace from an API request to the Gravity HTTP call, with nothing secret in any span.

A real API app under uvicorn enrolls a subscription whose start date is past, so the workflow
bills its first cycle at once: POST /subscriptions (server span) -> StartWorkflow -> RunWorkflow ->
StartActivity -> RunActivity:charge_cycle -> PUT .../tokenizedPayment (httpx client span).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from tests.api.helpers import build_clinic, eventually, ok, tokenize
from tests.telemetry.conftest import TELEMETRY_QUEUE, Captured

API_TOKEN = "telemetry-api-token-8c2f0e4b"  # loopback tests only
CARD_NUMBER = "4111111111111111"


@pytest.fixture
def api_server(
    db: Engine, captured: Captured, temporal_env: WorkflowEnvironment, traced_worker: Worker, sandbox_server: SandboxServer
) -> Iterator[ThreadedUvicorn]:
    settings = Settings.model_construct(api_token=SecretStr(API_TOKEN), postback_secret=SecretStr("telemetry-postbacks"), events_url=None, events_secret=None)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    app = create_app(db, temporal_env.client, settings, task_queue=TELEMETRY_QUEUE, gateways=gateways, telemetry=captured.telemetry)
    with temporal_env.with_time_skipping_disabled():  # the next cycle stays a month away
        server = ThreadedUvicorn(app).start()
        try:
            yield server
        finally:
            server.stop()


def _chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span and its ancestors, innermost first."""
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


def _url(span: ReadableSpan) -> str:
    """The request URL under the old or the new HTTP semantic conventions."""
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


def _status(span: ReadableSpan) -> object:
    attributes = span.attributes or {}
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


def _texts(span: ReadableSpan) -> list[str]:
    values = [span.name, str(span.status.description or "")]
    values += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        values += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    return values


async def test_one_trace_runs_from_the_api_request_to_the_gravity_call(
    api_server: ThreadedUvicorn, captured: Captured, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    captured.spans.clear()
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30.0) as api:
        clinic = await build_clinic(api)
        card_body = await tokenize(sandbox_server, CARD_NUMBER)
        ok(await api.post(f"/clients/{clinic.client_id}/cards", json=card_body), 201)
        enrollment = {
            "client_id": clinic.client_id,
            "pet_id": clinic.pet_id,
            "plan_id": clinic.plan_id,
            "location_id": clinic.location_id,
            "start_date": (date.today() - timedelta(days=2)).isoformat(),
        }
        sub_id = ok(await api.post("/subscriptions", json=enrollment, headers={"Idempotency-Key": "trace-enrollment"}), 201)["subscription_id"]

        async def whole_chain() -> list[ReadableSpan] | None:
            """The charge's span and its ancestors, once every one of them has ended (the activity
            and the request end after the HTTP call does)."""
            spans = captured.spans.get_finished_spans()
            by_id = {s.context.span_id: s for s in spans}
            for span in spans:
                if span.kind == SpanKind.CLIENT and _url(span).endswith("/tokenizedPayment"):
                    chain = _chain(span, by_id)
                    if chain[-1].parent is None:
                        return chain
            return None

        chain = await eventually(whole_chain, timeout=30.0)

    spans = captured.spans.get_finished_spans()
    http_span = chain[0]
    names = [s.name for s in chain]
    # Temporal's interceptor parents a workflow's outbound calls on the context the workflow was
    # started with; its RunWorkflow span is a marker beside them, in the same trace.
    assert names == [
        "PUT",
        "RunActivity:charge_cycle",
        "StartActivity:charge_cycle",
        "StartWorkflow:Subscription",
        "POST /subscriptions",
    ], names
    root = chain[-1]
    assert root.kind == SpanKind.SERVER and root.parent is None
    assert {s.context.trace_id for s in chain} == {root.context.trace_id}
    assert http_span.name == "PUT" and _status(http_span) == 200
    start_workflow = chain[3]
    assert (start_workflow.attributes or {}).get("temporalWorkflowID") == f"subscription:{sub_id}"
    run_workflow = [s for s in spans if s.name == "RunWorkflow:Subscription" and s.context.trace_id == root.context.trace_id]
    assert run_workflow and all(s.parent is not None and s.parent.span_id == start_workflow.context.span_id for s in run_workflow)

    # Nothing secret in any span of the run: not the card number (whole or grouped), the card
    # token, Gravity's bearer token or the API's.
    secrets = {CARD_NUMBER, "4111 1111 1111 1111", card_body["gravity_ref"], SANDBOX_TOKEN, API_TOKEN}
    leaks = [(s.name, text) for s in spans for text in _texts(s) for secret in secrets if secret in text]
    assert leaks == []
    assert len(spans) > 10  # the clinic set-up requests were traced too, and checked above
