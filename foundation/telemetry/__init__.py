"""Telemetry (design principle 9): OpenTelemetry traces from the API through workflows and
activities to the Gravity HTTP call, Temporal's SDK metrics plus our business counters, and logs
that carry workflow, subscription and invoice ids but never card data or tokens.

Off by default (`BILLING_OTEL_EXPORTER=none`). Workflow modules never import this package: tracing
inside workflows is done by Temporal's interceptor, outside the sandbox.
"""

from foundation.telemetry.logs import configure_logging, log_context
from foundation.telemetry.providers import Telemetry, counters, current_telemetry, setup_telemetry
from foundation.telemetry.redaction import redact

__all__ = ["Telemetry", "configure_logging", "counters", "current_telemetry", "log_context", "redact", "setup_telemetry"]
