"""Card numbers and bearer tokens are masked in log lines and exported spans, and log records carry
the ids known from the context."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from foundation.telemetry import configure_logging, log_context, redact
from foundation.telemetry.redaction import RedactingSpanExporter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111111111111111 declined", "card [card ****1111] declined"),
        ("pan=4111-1111-1111-1111;", "pan=[card ****1111];"),
        ("amex 3782 822463 10005 ok", "amex [card ****0005] ok"),
        ("13 digits 4222222222222", "13 digits [card ****2222]"),
        ("Authorization: Bearer abc.DEF-123_x/y=", "Authorization: Bearer [REDACTED]"),
        ("header authorization=secret-token-1, next", "header authorization=[REDACTED], next"),
        ("bearer sandbox-token", "bearer [REDACTED]"),
    ],
)
def test_card_numbers_and_bearer_tokens_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["invoice inv_4f2a amount 4500 cents", "phone 555-0100", "12 digits 411111111111", "20 digits 41111111111111111111", "2027-03-10"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", stream=stream)
    assert configure_logging("DEBUG", stream=stream) is not handler  # replaced, not stacked
    ours = [h for h in root.handlers if getattr(h, "_vet_billing_handler", False)]
    assert len(ours) == 1
    try:
        yield stream
    finally:
        for h in ours:
            root.removeHandler(h)
        root.setLevel(level)


def test_log_lines_carry_context_ids_and_never_card_data(log_stream: io.StringIO) -> None:
    log = logging.getLogger("tests.telemetry")
    with log_context(subscription_id="sub_1", invoice_id="inv_9"):
        log.info("charging card %s with %s", "4111 1111 1111 1111", "Bearer tok_live_abc")
    log.debug("outside any context")
    try:
        raise ValueError("gateway said 5555555555554444 is bad")
    except ValueError:
        log.exception("failed")
    text = log_stream.getvalue()
    first, second = text.splitlines()[:2]
    assert "charging card [card ****1111] with Bearer [REDACTED]" in first
    assert first.endswith("[subscription_id=sub_1 invoice_id=inv_9]")
    assert second.endswith("outside any context")
    assert "4111" not in text.replace("****1111", "") and "tok_live_abc" not in text
    assert "5555555555554444" not in text and "[card ****4444]" in text  # the traceback too


def test_workflow_logger_extras_give_the_workflow_and_subscription_ids(log_stream: io.StringIO) -> None:
    logging.getLogger("temporalio.workflow").info(
        "cycle billed", extra={"temporal_workflow": {"workflow_id": "subscription:sub_7", "workflow_type": "Subscription"}}
    )
    assert "[workflow_id=subscription:sub_7 subscription_id=sub_7]" in log_stream.getvalue()


def test_exported_spans_are_redacted_on_the_way_out() -> None:
    inner = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(inner)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("charge 4111111111111111") as span:
        span.set_attribute("http.request.header.authorization", ("Bearer secret-token",))
        span.set_attribute("note", "card 4111111111111111")
        span.set_attribute("cents", 4500)
        span.add_event("sent", {"body": "cardNumber=5555555555554444"})
        span.set_status(Status(StatusCode.ERROR, "declined 4111111111111111"))
    provider.shutdown()
    (exported,) = inner.get_finished_spans()
    assert exported.name == "charge [card ****1111]"
    assert dict(exported.attributes or {}) == {
        "http.request.header.authorization": ("Bearer [REDACTED]",),
        "note": "card [card ****1111]",
        "cents": 4500,
    }
    assert dict(exported.events[0].attributes or {}) == {"body": "cardNumber=[card ****4444]"}
    assert exported.status.description == "declined [card ****1111]"
