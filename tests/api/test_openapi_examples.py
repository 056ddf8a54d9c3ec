"""Every operation of the served OpenAPI schema shows what to send and what comes back: each JSON
request body and each 2xx answer carries at least one example (on its media type, its schema or the
component its schema names), each CSV answer one too, and every example is valid against its schema.

Why: the billing system and finance code against the schema; an example they cannot trust (or none
at all) sends them to read the source. The schema fuzz test also sends the request examples.
"""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests.api.helpers import ok

Spec = dict[str, Any]


def _component(spec: Spec, ref: str) -> dict[str, Any]:
    return spec["components"]["schemas"][ref.removeprefix("#/components/schemas/")]


def examples_of(spec: Spec, schema: dict[str, Any]) -> list[Any] | None:
    """The examples a schema carries itself or through its $ref, every branch of an anyOf, or the
    items of an array (each item example as a one-item list); None when there are none."""
    if schema.get("examples"):
        return list(schema["examples"])
    if "example" in schema:
        return [schema["example"]]
    if "$ref" in schema:
        return examples_of(spec, _component(spec, schema["$ref"]))
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        found = [examples_of(spec, branch) for branch in branches if branch.get("type") != "null"]
        return None if any(f is None for f in found) else [e for f in found for e in f or []]
    if schema.get("type") == "array" and "items" in schema:
        items = examples_of(spec, schema["items"])
        return None if items is None else [[item] for item in items]
    return None


def media_examples(spec: Spec, media: dict[str, Any]) -> list[Any] | None:
    if "example" in media:
        return [media["example"]]
    if media.get("examples"):
        return [named["value"] for named in media["examples"].values()]
    return examples_of(spec, media.get("schema", {}))


def documented_media(spec: Spec) -> list[tuple[str, dict[str, Any]]]:
    """(operation and part, media object) of every request body and every 2xx answer of the schema."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
                found.append((f"{method.upper()} {path} request {content_type}", media))
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    for content_type, media in answer.get("content", {}).items():
                        found.append((f"{method.upper()} {path} {status} {content_type}", media))
    return found


def validator(spec: Spec, schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) whose $refs resolve in the spec's components."""
    return Draft202012Validator({**schema, "components": spec["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER)


def invalid_examples(spec: Spec) -> list[str]:
    """Each example, of an operation or a component, that its own schema refuses, with why."""
    problems = []
    for where, media in documented_media(spec):
        for example in media_examples(spec, media) or []:
            if "json" in where:
                problems += [f"{where}: {error.json_path}: {error.message}" for error in validator(spec, media["schema"]).iter_errors(example)]
    for name, schema in spec["components"]["schemas"].items():
        for example in schema.get("examples", []):
            problems += [f"component {name}: {error.json_path}: {error.message}" for error in validator(spec, schema).iter_errors(example)]
    return problems


async def test_every_request_body_and_success_answer_has_an_example(anonymous: httpx.AsyncClient) -> None:
    spec = ok(await anonymous.get("/openapi.json"))
    media = documented_media(spec)
    missing = [where for where, one in media if not media_examples(spec, one)]
    assert len(media) > 80, "the walk found the operations' bodies and answers"
    assert missing == [], f"{len(missing)} bodies or answers without an example:\n" + "\n".join(missing)


async def test_every_csv_answer_shows_its_header_row(anonymous: httpx.AsyncClient) -> None:
    spec = ok(await anonymous.get("/openapi.json"))
    csv = [(where, media_examples(spec, media)) for where, media in documented_media(spec) if "text/csv" in where]
    assert len(csv) == 6, csv  # report, two audit trails, reconciliation, ledger balances, journal
    for where, found in csv:
        assert found and found[0].count("\r\n") >= 2, where


async def test_every_example_is_valid_against_its_schema(anonymous: httpx.AsyncClient) -> None:
    spec = ok(await anonymous.get("/openapi.json"))
    problems = invalid_examples(spec)
    assert problems == [], "\n".join(problems)


def test_an_example_that_breaks_its_schema_is_reported() -> None:
    spec: Spec = {
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}}}},
        "components": {
            "schemas": {"T": {"type": "object", "required": ["cents"], "properties": {"cents": {"type": "integer"}}, "examples": [{"cents": "70.00"}]}}
        },
    }
    assert len(invalid_examples(spec)) == 2  # once for the answer, once for the component
    assert "'70.00' is not of type 'integer'" in invalid_examples(spec)[0]
