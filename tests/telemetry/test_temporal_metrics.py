"""Temporal's own SDK metrics reach our meter provider: a client connected through `worker.connect`
with telemetry on uses a runtime whose metrics are buffered and forwarded while
`Telemetry.temporal_metrics()` runs."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.telemetry.conftest import Captured
from worker import connect


def _metric_names(captured: Captured) -> set[str]:
    data = captured.metrics.get_metrics_data()
    return {m.name for r in (data.resource_metrics if data else []) for s in r.scope_metrics for m in s.metrics}


async def test_temporal_sdk_metrics_are_forwarded(captured: Captured, temporal_env: WorkflowEnvironment) -> None:
    telemetry = captured.telemetry
    address = temporal_env.client.service_client.config.target_host
    async with telemetry.temporal_metrics():
        client = await connect(address, temporal_env.client.namespace, telemetry=telemetry)
        assert client.service_client.config.runtime is telemetry.temporal_runtime()
        await client.count_workflows()
    names = _metric_names(captured)
    assert "temporal_request" in names, sorted(names)
