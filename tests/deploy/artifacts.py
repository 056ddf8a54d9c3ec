"""Where deploy/ lives and how its files are read: paths, the validation tools, parsed manifests and settings."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from foundation.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_OVERLAY = DEPLOY / "k8s" / "overlays" / "production"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
BIN = Path(sys.executable).parent

# Environment variables our containers may set besides the engine's settings: the standard
# OpenTelemetry SDK ones the engine's OTel setup picks up by itself.
STANDARD_OTEL_VARS = {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}

# What a worker or the API cannot run without in production, each with the names that set it.
REQUIRED = {
    "database URL": {"DATABASE_URL", "BILLING_DATABASE_URL"},
    "Temporal address": {"TEMPORAL_ADDRESS", "BILLING_TEMPORAL_ADDRESS"},
    "API token": {"BILLING_API_TOKEN"},
    "postback secret": {"BILLING_POSTBACK_SECRET"},
    "Gravity token": {"BILLING_GRAVITY_TOKEN"},
    # Unset means "the local sandbox": a production container without it would charge nobody.
    "Gravity base URL": {"BILLING_GRAVITY_BASE_URL"},
}

# Settings whose values are secrets: only ever from the Secret (k8s) or deploy/.env (compose).
SECRET_VARS = {
    "DATABASE_URL",
    "BILLING_DATABASE_URL",
    "BILLING_API_TOKEN",
    "BILLING_POSTBACK_SECRET",
    "BILLING_GRAVITY_TOKEN",
    "BILLING_GRAVITY_TOKENS",
}

# Stand-ins for values that come from the Secret or deploy/.env, shaped as the settings expect.
SECRET_STANDINS = {
    "DATABASE_URL": "postgresql://billing:x@db:5432/billing",
    "BILLING_GRAVITY_TOKENS": '{"1000000001": "t"}',
    "BILLING_GRAVITY_BASE_URL": "https://gravity.invalid/virtualterminal/v1",
}


# --- the tools ------------------------------------------------------------------------------------


def tool(name: str) -> Path:
    """A validation tool installed in this virtualenv by the `test` extra."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: pip install -e '.[test]'")
    return path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=180, cwd=cwd)


def kubectl() -> str | None:
    return shutil.which("kubectl")


# --- Kubernetes -----------------------------------------------------------------------------------


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def base_resource_files() -> list[Path]:
    return sorted(p for p in K8S_BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def overlay_resource_files() -> list[Path]:
    """Whole resources of the overlay (patches are partial objects, checked once rendered)."""
    kustomization = yaml.safe_load((K8S_OVERLAY / "kustomization.yaml").read_text())
    return [K8S_OVERLAY / name for name in kustomization["resources"] if (K8S_OVERLAY / name).is_file()]


def k8s_documents(rendered: Path | None) -> list[dict[str, Any]]:
    files = [rendered] if rendered else [*base_resource_files(), *overlay_resource_files()]
    return [doc for path in files for doc in load_docs(path)]


def workload_containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            pod = doc["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield doc, container


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Name -> env entry, with ConfigMap keys pulled in through envFrom as {"configMap": name}."""
    config_maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in docs if doc["kind"] == "ConfigMap"}
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"envFrom names ConfigMap {name}, which deploy/k8s does not define"
        for key in config_maps[name]:
            env[key] = {"configMap": name, "value": config_maps[name][key]}
    for entry in container.get("env", []):
        env[entry["name"]] = entry
    return env


# --- compose --------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def billing_services() -> dict[str, dict[str, Any]]:
    """Compose services that run our image."""
    return {
        name: service for name, service in compose()["services"].items() if "build" in service or str(service.get("image", "")).startswith("${BILLING_IMAGE")
    }


# --- the engine's settings ------------------------------------------------------------------------


def known_env_names() -> set[str]:
    """Every environment variable foundation.settings.Settings reads."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"{ENV_PREFIX}{field_name.upper()}")
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build Settings from exactly `env` (nothing inherited from the test's own environment)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in {"DATABASE_URL", "TEMPORAL_ADDRESS"}:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# --- the health check -----------------------------------------------------------------------------


class HealthServer(http.server.ThreadingHTTPServer):
    """A stand-in for the API's `GET /health`, answering `status` (a test may change it)."""

    status = 200


class HealthHandler(http.server.BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:  # the stdlib's name
        self.send_response(self.server.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
