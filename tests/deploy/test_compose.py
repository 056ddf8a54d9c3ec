"""The compose file: its schema, the settings it gives our containers, and secrets only from deploy/.env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.artifacts import (
    COMPOSE,
    DEPLOY,
    REQUIRED,
    ROOT,
    SECRET_STANDINS,
    SECRET_VARS,
    STANDARD_OTEL_VARS,
    billing_services,
    compose,
    known_env_names,
    run,
    settings_from,
    tool,
)


def test_compose_validates_against_the_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  worker:\n    image: x\n    restart: sometimes\n    imagee: y\n")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode != 0


def test_compose_sets_only_known_settings_for_our_containers() -> None:
    allowed = known_env_names() | STANDARD_OTEL_VARS
    for name, service in billing_services().items():
        unknown = set(service["environment"]) - allowed
        assert not unknown, f"compose service {name} sets {sorted(unknown)}, which the settings do not read"


def test_required_settings_are_set_for_worker_and_api_in_compose() -> None:
    services = billing_services()
    for role in ("billing-worker", "billing-api"):
        env = set(services[role]["environment"])
        missing = [what for what, names in REQUIRED.items() if not names & env]
        assert not missing, f"compose {role} lacks {missing}"
    assert services["billing-migrate"]["environment"]["DATABASE_URL"]


def test_compose_values_parse_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def interpolate(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, operator, rest = match.group(1), match.group(2), match.group(3) or ""
            if operator == "-":
                return rest
            return SECRET_STANDINS.get(name, "standin")

        return re.sub(r"\$\{([A-Z_]+)(?::([-?])([^}]*))?\}", one, value)

    for name, service in billing_services().items():
        env = {key: interpolate(str(value)) for key, value in service["environment"].items() if value is not None}
        settings = settings_from(env, monkeypatch)
        assert settings.database_url and settings.temporal_address, name


def test_compose_takes_secrets_only_from_the_env_file() -> None:
    """Every secret is a bare ${NAME...} interpolation (the URL may wrap the password in one)."""
    for name, service in billing_services().items():
        for key, value in service["environment"].items():
            if key in SECRET_VARS and value is not None:
                assert "${" in str(value), f"{name}: {key} holds a literal value"
                literal = re.sub(r"\$\{[^}]*\}", "", str(value))
                assert key == "DATABASE_URL" or literal == "", f"{name}: {key} mixes a literal into the secret"
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|PWD|SECRET|TOKEN", key):
                assert value is None or re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), f"{name}: {key} is not from deploy/.env"


def test_env_example_lists_every_required_variable_with_no_value() -> None:
    example = (DEPLOY / ".env.example").read_text()
    assignments = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#") and "=" in line)
    assert all(value == "" for value in assignments.values()), "deploy/.env.example must hold placeholders only"
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required <= set(assignments), f"missing from deploy/.env.example: {sorted(required - set(assignments))}"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), "deploy/.env must be git-ignored"
