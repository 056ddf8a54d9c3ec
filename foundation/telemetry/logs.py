"""Logs that say which workflow, subscription and invoice they are about, and never card data.

Why a filter on our handler rather than ids in every message: the ids are known from the context
(Temporal's activity info, Temporal's workflow logger extras, or `log_context(...)` around a step),
so every line of every module, ours or a library's, carries them without anyone formatting them in.
The same filter masks card-number-like digit runs and bearer tokens in the message, and the
formatter masks the final text again, tracebacks included.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TextIO

from opentelemetry import trace
from temporalio import activity

from foundation.telemetry.redaction import redact

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(ids)s"
ID_FIELDS = ("workflow_id", "subscription_id", "invoice_id", "activity", "attempt", "trace_id")
_HANDLER_MARK = "_vet_billing_handler"

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("billing_log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Within the block, every log record carries these ids (e.g. `invoice_id=...`). Nests."""
    merged = {**_context.get(), **{k: v for k, v in ids.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_ids(record: logging.LogRecord | None = None) -> dict[str, str]:
    """The ids known here: explicit `log_context`, then Temporal's activity or workflow details."""
    ids: dict[str, str] = {}
    details: Mapping[str, Any] | None = None
    if activity.in_activity():
        info = activity.info()
        ids["workflow_id"] = info.workflow_id or ""
        ids["activity"] = info.activity_type
        ids["attempt"] = str(info.attempt)
    elif record is not None:
        details = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
        if isinstance(details, Mapping) and details.get("workflow_id"):
            ids["workflow_id"] = str(details["workflow_id"])
    workflow_id = ids.get("workflow_id", "")
    if workflow_id.startswith("subscription:"):
        ids["subscription_id"] = workflow_id.split(":", 1)[1]
    ids.update(_context.get())
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        ids["trace_id"] = format(span.trace_id, "032x")
    return {k: v for k, v in ids.items() if v}


class ContextFilter(logging.Filter):
    """Adds the ids as record attributes (and `%(ids)s`), and redacts the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids(record)
        for field in ID_FIELDS:
            setattr(record, field, ids.get(field, ""))
        shown = " ".join(f"{k}={ids[k]}" for k in ID_FIELDS if k in ids)
        record.ids = f" [{shown}]" if shown else ""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record, so a traceback's text is masked too."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "ids"):
            record.ids = ""
        return redact(super().format(record))


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger at `level` (settings.log_level). Idempotent: calling again
    replaces our handler, never stacks a second one, and leaves other handlers alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(RedactingFormatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
