"""Masking card numbers and bearer tokens in any text that leaves the process (logs, spans).

Why a pattern and not a list of known secrets: a log line or a span attribute can carry a card number
the code never meant to print (an exception text, a third-party library's message, a header captured
by an instrumentation's environment switch). Anything that *looks* like a card number (13 to 19
digits, optionally grouped by spaces or dashes) or a bearer credential is masked, at the cost of
masking the occasional long numeric id too. Card tokens have no recognisable shape: they are kept out
of logs and spans by never putting them there (see tests/telemetry).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# 13-19 digits, possibly grouped by single spaces or dashes, not part of a longer digit run.
PAN_PATTERN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
# `Bearer <credential>` (any case), and `Authorization: <anything>` up to the end of the value.
BEARER_PATTERN = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/=]+")
AUTHORIZATION_PATTERN = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\b)[^\s,;\"'}]+")
# What a database error quotes of the data: PostgreSQL's DETAIL line (`Key (email)=(dana@...)`,
# `Failing row contains (...)`) and SQLAlchemy's `[parameters: ...]` (also hidden at the engine).
# Each runs to the end of its line, a real newline or one escaped in a repr (`\\n`).
DETAIL_PATTERN = re.compile(r"(DETAIL:[ \t]*)(?:(?!\\n)[^\n])*")
PARAMETERS_PATTERN = re.compile(r"\[parameters: (?:(?!\\n)[^\n])*")

MASK = "[REDACTED]"


def _mask_pan(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"[card ****{digits[-4:]}]"


def redact(text: str) -> str:
    """`text` with card-number-like digit runs reduced to their last four, bearer tokens masked, and
    the row values and statement parameters a database error quotes masked."""
    if not text:
        return text
    text = PAN_PATTERN.sub(_mask_pan, text)
    text = BEARER_PATTERN.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = DETAIL_PATTERN.sub(lambda m: f"{m.group(1)}{MASK} (row values)", text)
    text = PARAMETERS_PATTERN.sub(f"[parameters: {MASK}]", text)
    return AUTHORIZATION_PATTERN.sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact_value(value: Any) -> Any:
    """A span/log attribute value with every string in it redacted (sequences element-wise)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


def redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if attributes is None:
        return None
    return {key: redact_value(value) for key, value in attributes.items()}


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of a finished span whose name, attributes, events and status text are redacted."""
    events = [Event(e.name, redact_attributes(e.attributes), e.timestamp) for e in span.events]
    status = span.status
    if status.description:
        status = type(status)(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps the real exporter: the last line of defence before spans leave the process."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([redacted_span(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
