"""The exporters the settings choose, in a fresh process each (telemetry is once per process):
`console` prints spans, redacted; `none` switches nothing on; `otlp` builds its HTTP exporters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from foundation.settings import Settings
from foundation.telemetry import setup_telemetry
from foundation.telemetry.providers import _exporters

telemetry = setup_telemetry(Settings())
print(json.dumps({"enabled": telemetry.enabled, "again": setup_telemetry(Settings()) is telemetry}), flush=True)
if Settings().otel_exporter == "console":
    with telemetry.tracer.start_as_current_span("charge") as span:
        span.set_attribute("note", "card 4111111111111111, Bearer sandbox-token")
    telemetry.counters.charge(outcome="approved", attempt=2)
    telemetry.shutdown()
if Settings().otel_exporter == "otlp":
    spans, reader = _exporters(Settings())  # nothing is sent: no span or count was made
    print(json.dumps({"spans": type(spans).__name__, "metrics": type(reader._exporter).__name__}), flush=True)
"""


def _run(exporter: str, **env: str) -> tuple[dict[str, object], str]:
    environment = {**os.environ, "BILLING_OTEL_EXPORTER": exporter, **env}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=True)
    first, _, rest = done.stdout.partition("\n")
    return json.loads(first), rest


def test_console_exporter_prints_redacted_spans_and_metrics() -> None:
    status, output = _run("console")
    assert status == {"enabled": True, "again": True}
    assert '"name": "charge"' in output and "[card ****1111]" in output and "Bearer [REDACTED]" in output
    assert "4111111111111111" not in output and "sandbox-token" not in output
    assert "billing.recoveries" in output and "vet-billing" in output


def test_none_switches_nothing_on() -> None:
    status, output = _run("none")
    assert status == {"enabled": False, "again": True} and output == ""


def test_otlp_builds_http_exporters_for_the_endpoint() -> None:
    status, output = _run("otlp", BILLING_OTEL_ENDPOINT="http://127.0.0.1:9")
    assert status["enabled"] is True
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"spans')]
    assert lines == [{"spans": "OTLPSpanExporter", "metrics": "OTLPMetricExporter"}]
