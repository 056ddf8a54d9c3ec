"""One `Telemetry` per process: the tracer and meter providers, and the hooks that instrument
Temporal clients and workers, the Gravity HTTP client and the API app with them.

Why explicit providers rather than only OpenTelemetry's globals: the globals can be set once per
process, so tests could never swap in an in-memory exporter after something else had configured
them. Our own instrumentation always uses the providers held here; the globals are also set (once)
when telemetry is switched on outside tests, so third-party libraries report through the same
exporters.

Off (`BILLING_OTEL_EXPORTER=none`, the default) everything here is a no-op: no interceptor is added,
no HTTP client or app is wrapped, and the counters record into a no-op meter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics, trace as otel_trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, Tracer, TracerProvider

from foundation.telemetry.counters import METER_NAME, BusinessCounters

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Client
    from temporalio.runtime import MetricBuffer, Runtime

    from foundation.settings import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "vet_billing"
DEFAULT_SERVICE_NAME = "vet-billing"
METRIC_EXPORT_INTERVAL_MS = 15_000
TEMPORAL_METRIC_BUFFER = 10_000


@dataclass
class Telemetry:
    """The process's telemetry. Build with `setup_telemetry`; `Telemetry.disabled()` is the no-op."""

    enabled: bool
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    temporal_metrics_enabled: bool = False
    counters: BusinessCounters = field(init=False)
    tracer: Tracer = field(init=False)
    _interceptor: Any = field(init=False, default=None)
    _runtime: Runtime | None = field(init=False, default=None)
    _buffer: MetricBuffer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.counters = BusinessCounters.on(self.meter_provider.get_meter(METER_NAME))
        self.tracer = self.tracer_provider.get_tracer(TRACER_NAME)

    @classmethod
    def disabled(cls) -> Telemetry:
        return cls(enabled=False, tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())

    # ------------------------------------------------------------------ Temporal
    def temporal_interceptors(self) -> list[Any]:
        """`[TracingInterceptor]` when on, else `[]`: for `Client.connect(interceptors=...)`. A worker
        built on that client picks the interceptor up by itself (it is also a worker interceptor)."""
        if not self.enabled:
            return []
        if self._interceptor is None:
            from temporalio.contrib.opentelemetry import TracingInterceptor

            self._interceptor = TracingInterceptor(self.tracer)
        return [self._interceptor]

    def traced_client(self, client: Client) -> Client:
        """The same connection with the tracing interceptor added (the client itself when off, or
        when it already traces). Cheap: no new connection is opened."""
        from temporalio.client import Client as TemporalClient
        from temporalio.contrib.opentelemetry import TracingInterceptor

        if not self.enabled:
            return client
        config = client.config()
        if any(isinstance(i, TracingInterceptor) for i in config["interceptors"]):
            return client
        config["interceptors"] = [*config["interceptors"], *self.temporal_interceptors()]
        return TemporalClient(**config)

    def temporal_runtime(self) -> Runtime | None:
        """A Temporal runtime whose SDK metrics (task latencies, slots, polls...) are buffered for
        `temporal_metrics()` to forward into our meter provider; None (the default runtime) when off."""
        if not (self.enabled and self.temporal_metrics_enabled):
            return None
        if self._runtime is None:
            from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

            self._buffer = MetricBuffer(TEMPORAL_METRIC_BUFFER)
            self._runtime = Runtime(telemetry=TelemetryConfig(metrics=self._buffer, metric_prefix="temporal_"))
        return self._runtime

    @asynccontextmanager
    async def temporal_metrics(self) -> AsyncIterator[None]:
        """Forward the Temporal SDK's metrics for as long as the block runs (no-op when off)."""
        if self.temporal_runtime() is None or self._buffer is None:
            yield
            return
        from temporalio.contrib.opentelemetry import MetricsExporter

        async with MetricsExporter(self._buffer, self.meter_provider, meter_name="temporalio"):
            yield

    # ------------------------------------------------------------------ HTTP
    def instrument_httpx(self, http: httpx.AsyncClient) -> None:
        """Client spans for every request of this httpx client (method, URL, status; no headers,
        no bodies: the bearer token and card data stay out)."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def instrument_app(self, app: FastAPI) -> None:
        """A server span per API request, named by its route template (e.g. `POST /subscriptions`)."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, exclude_spans=["receive", "send"])

    # ------------------------------------------------------------------ lifecycle
    def force_flush(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if callable(flush):
                flush()

    def shutdown(self) -> None:
        """Flush and stop exporting; the process falls back to disabled telemetry."""
        global _current
        for provider in (self.tracer_provider, self.meter_provider):
            stop = getattr(provider, "shutdown", None)
            if callable(stop):
                stop()
        if _current is self:
            _current = Telemetry.disabled()


_current: Telemetry = Telemetry.disabled()
_globals_set = False


def current_telemetry() -> Telemetry:
    """The process's telemetry (disabled until `setup_telemetry` switches it on)."""
    return _current


def counters() -> BusinessCounters:
    """The business counters of the current telemetry (no-op when off)."""
    return _current.counters


def setup_telemetry(
    settings: Settings,
    *,
    service_name: str = DEFAULT_SERVICE_NAME,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    temporal_metrics: bool = True,
    set_global: bool | None = None,
) -> Telemetry:
    """Switch telemetry on as `settings.otel_exporter` says (none | console | otlp), or with the
    given in-memory exporter/reader (tests). Idempotent: once on, every later call returns the same
    `Telemetry` until it is `shutdown()`; with the exporter `none` and nothing given it stays off.

    Spans go through a batch processor (the in-memory test exporter: a simple one, so spans are
    there as soon as they end); every exported span is redacted again on its way out."""
    global _current, _globals_set
    if _current.enabled:
        return _current
    if settings.otel_exporter == "none" and span_exporter is None and metric_reader is None:
        return _current

    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from foundation.telemetry.redaction import RedactingSpanExporter

    resource = Resource.create({SERVICE_NAME: service_name})
    tracer_provider = SdkTracerProvider(resource=resource)
    readers: list[MetricReader] = []
    if span_exporter is not None or metric_reader is not None:
        if span_exporter is not None:
            tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        if metric_reader is not None:
            readers.append(metric_reader)
    else:
        exporter, reader = _exporters(settings)
        tracer_provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(exporter)))
        readers.append(reader)
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=readers)
    _current = Telemetry(enabled=True, tracer_provider=tracer_provider, meter_provider=meter_provider, temporal_metrics_enabled=temporal_metrics)
    if (set_global if set_global is not None else span_exporter is None and metric_reader is None) and not _globals_set:
        otel_trace.set_tracer_provider(tracer_provider)
        otel_metrics.set_meter_provider(meter_provider)
        _globals_set = True
    log.info("telemetry on: exporter %s, service %s", settings.otel_exporter if span_exporter is None else "in-memory", service_name)
    return _current


def _exporters(settings: Settings) -> tuple[SpanExporter, MetricReader]:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if settings.otel_exporter == "console":
        return ConsoleSpanExporter(), PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=METRIC_EXPORT_INTERVAL_MS)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = (settings.otel_endpoint or "").rstrip("/")
    # Unset endpoint: the exporters read OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318.
    spans = OTLPSpanExporter(endpoint=f"{base}/v1/traces") if base else OTLPSpanExporter()
    metrics = OTLPMetricExporter(endpoint=f"{base}/v1/metrics") if base else OTLPMetricExporter()
    return spans, PeriodicExportingMetricReader(metrics, export_interval_millis=METRIC_EXPORT_INTERVAL_MS)
