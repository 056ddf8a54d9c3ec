"""Schemathesis hooks of the fuzz run (loaded through SCHEMATHESIS_HOOKS by test_schema_fuzz.py).

Two checks of the API's own promises. Every refusal (4xx) has the one error shape and names at
least one field. And, replacing schemathesis's own `positive_data_acceptance`: a request the schema
calls valid may still be refused, but only by the business rules (422 "refused": an unknown id, a
date window, a location's limit), never as "validation", which would mean the schema fails to state
a rule. The one deliberate exception is an integer sent as 5000.0: JSON Schema counts it an integer,
the API refuses it (issue 18: no strings, booleans or decimals for cents).
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.generation.meta import TestPhase

from api.deps import IDEMPOTENCY_HEADER
from api.fields import NOT_AN_INTEGER

#: What schemathesis's own check lets a schema-valid request be answered with (5xx is another check's).
ACCEPTED = {401, 403, 404, 409, 429}


def _value_at(case: Case, field: str) -> Any:
    """The request's value for a dotted field name from an error body (`lines.0.amount_cents`)."""
    value: Any = case.body if isinstance(case.body, dict) else None
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _whole_float(case: Case, error: dict[str, str]) -> bool:
    value = _value_at(case, error.get("field", ""))
    return error.get("reason") == NOT_AN_INTEGER and isinstance(value, float) and value.is_integer()


@schemathesis.check
def schema_valid_requests_are_refused_only_by_business_rules(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if 200 <= status < 400 or status in ACCEPTED or status >= 500:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if status == 422 and isinstance(body, dict):
        errors = body.get("fields") or []
        if body.get("error") == "refused" or (errors and all(_whole_float(case, e) for e in errors)):
            return None
    raise AssertionError(f"A request the schema calls valid was answered {status}: {body}")


@schemathesis.check
def every_refusal_names_a_field(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"A {response.status_code} answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict) or set(body) != {"error", "message", "fields"}:
        raise AssertionError(f"A {response.status_code} answer is not the API's error shape: {body}")
    if not body["fields"] or not all(f.get("field") and f.get("reason") for f in body["fields"]):
        raise AssertionError(f"A {response.status_code} answer names no field: {body}")
    return None


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """In the stateful phase the fuzzer plays a real client and sends each request with a key of its
    own, so a chain of calls gets past its first POST; the other phases reuse keys, and meet the 409."""
    if case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL and case.headers and IDEMPOTENCY_HEADER in case.headers:
        case.headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex
