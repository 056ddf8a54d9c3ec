"""Telemetry switched on for these tests only, into in-memory exporters, and a worker that traces.

The worker is our own, on its own task queue, sharing the session's Temporal dev server, database
and Gravity sandbox; its Temporal client is the session's with the tracing interceptor added, and
its Gravity clients are created while telemetry is on, so their HTTP calls are traced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from foundation.telemetry import Telemetry, current_telemetry, setup_telemetry
from gravity.directory import GatewayDirectory
from gravity.sandbox.server import SandboxServer
from worker import build_worker

TELEMETRY_QUEUE = "telemetry-tests"


class Captured:
    """What the in-memory exporters hold."""

    def __init__(self, telemetry: Telemetry, spans: InMemorySpanExporter, metrics: InMemoryMetricReader) -> None:
        self.telemetry = telemetry
        self.spans = spans
        self.metrics = metrics

    def counter(self, name: str, **attributes: str) -> int:
        """The current sum of a counter over the data points whose attributes include `attributes`."""
        data = self.metrics.get_metrics_data()
        total = 0
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        if isinstance(point, NumberDataPoint) and all((point.attributes or {}).get(k) == v for k, v in attributes.items()):
                            total += int(point.value)
        return total


@pytest.fixture(scope="package")
def captured() -> Iterator[Captured]:
    assert not current_telemetry().enabled, "telemetry must be off before these tests switch it on"
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = setup_telemetry(Settings.model_construct(), service_name="vet-billing-tests", span_exporter=spans, metric_reader=metrics)
    assert telemetry.enabled and setup_telemetry(Settings.model_construct()) is telemetry  # idempotent
    try:
        yield Captured(telemetry, spans, metrics)
    finally:
        telemetry.shutdown()
        assert not current_telemetry().enabled


@pytest.fixture(scope="package")
def traced_client(captured: Captured, temporal_env: WorkflowEnvironment) -> Client:
    return captured.telemetry.traced_client(temporal_env.client)


@pytest.fixture(scope="package")
async def traced_worker(captured: Captured, traced_client: Client, engine: Engine, sandbox_server: SandboxServer) -> AsyncIterator[Worker]:
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    worker = build_worker(traced_client, engine, gateways, task_queue=TELEMETRY_QUEUE)
    async with worker:
        yield worker
    await gateways.aclose()
