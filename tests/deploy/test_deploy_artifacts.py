"""Offline checks of everything under deploy/: schemas, linters, entry points and settings.

Why: nothing here can start Docker or reach a cluster, yet a typo in a manifest, a setting name the
engine does not read, or a secret pasted into a file would only show up at the first real deploy.
These tests catch them in CI with the tools pinned in the `test` extra, run from this virtualenv.
Each tool is also shown a broken input once, so a tool that silently checks nothing fails here.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from foundation.settings import ENV_PREFIX, Settings
from stack.search_attributes import ALL_KEYS, cli_type_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_OVERLAY = DEPLOY / "k8s" / "overlays" / "production"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
BIN = Path(sys.executable).parent

# Kubernetes versions the manifests must be valid for: an older one still common on managed
# clusters, and the newest kubernetes-validate ships.
K8S_VERSIONS = ["1.30.0", "1.37.0"]

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

# The engine declares its search attributes once (stack/search_attributes.py); deploy/ must
# register exactly those names and types on a real cluster.
SEARCH_ATTRIBUTES = {key.name: cli_type_name(key) for key in ALL_KEYS}

HISTORY_SHARDS = 512


# --- helpers ------------------------------------------------------------------------------------


def tool(name: str) -> Path:
    """A validation tool installed in this virtualenv by the `test` extra."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: pip install -e '.[test]'")
    return path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=180, cwd=cwd)


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def base_resource_files() -> list[Path]:
    return sorted(p for p in K8S_BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def overlay_resource_files() -> list[Path]:
    """Whole resources of the overlay (patches are partial objects, checked once rendered)."""
    kustomization = yaml.safe_load((K8S_OVERLAY / "kustomization.yaml").read_text())
    return [K8S_OVERLAY / name for name in kustomization["resources"] if (K8S_OVERLAY / name).is_file()]


def kubectl() -> str | None:
    return shutil.which("kubectl")


@pytest.fixture(scope="module")
def rendered_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production overlay rendered by `kubectl kustomize` (no cluster needed)."""
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not on PATH: the overlay cannot be rendered; base and overlay files are validated one by one")
    result = run(binary, "kustomize", K8S_OVERLAY)
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("k8s") / "production.yaml"
    path.write_text(result.stdout)
    return path


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


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def billing_services() -> dict[str, dict[str, Any]]:
    """Compose services that run our image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("${BILLING_IMAGE")
    }


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the tools ----------------------------------------------------------------------------------


def test_compose_validates_against_the_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  worker:\n    image: x\n    restart: sometimes\n    imagee: y\n")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode != 0


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_file_validates_strictly(version: str) -> None:
    files = [*base_resource_files(), *overlay_resource_files()]
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, *files)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # An unknown kind or apiVersion is only a warning to kubernetes-validate: make it an error.
    assert "WARN" not in output and "ERROR" not in output, output


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_production_overlay_validates_strictly(rendered_overlay: Path, version: str) -> None:
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, rendered_overlay)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARN" not in output and "ERROR" not in output, output


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    broken = tmp_path / "configmap.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  colour: blue\ndata: {}\n")
    result = run(tool("kubernetes-validate"), "--strict", "-k", K8S_VERSIONS[0], broken)
    assert result.returncode != 0


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = run(tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN apt-get install curl\n")
    result = run(tool("hadolint"), sloppy)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_yamllint_passes_on_deploy() -> None:
    result = run(tool("yamllint"), "--strict", "-c", DEPLOY / ".yamllint", DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_rejects_bad_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")  # duplicate key
    result = run(tool("yamllint"), "--strict", "-c", DEPLOY / ".yamllint", bad)
    assert result.returncode != 0


# --- the image ----------------------------------------------------------------------------------


def test_entry_points_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["billing"] == "cli.main:app"
    module_name, _, attribute = project["project"]["scripts"]["billing"].partition(":")
    assert hasattr(importlib.import_module(module_name), attribute)
    assert (ROOT / "worker.py").is_file()
    assert "worker" in project["tool"]["setuptools"]["py-modules"]


def test_dockerfile_runs_the_worker_by_default_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    froms = [args for name, args in instructions if name == "FROM"]
    assert froms and all(re.match(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})? ", f + " ") for f in froms), froms
    cmd = [args for name, args in instructions if name == "CMD"][-1]
    assert cmd == '["billing", "worker"]'
    user = [args for name, args in instructions if name == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), "USER must be a numeric non-root uid for runAsNonRoot"
    assert any(name == "HEALTHCHECK" for name, _ in instructions)


def test_dockerfile_copies_everything_the_runtime_needs() -> None:
    """A package added to pyproject but not COPY'd would be missing from the image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied: set[str] = set()
    for name, args in dockerfile_instructions():
        if name == "COPY" and "--from=" not in args:
            copied.update(part.rstrip("/") for part in shlex.split(args)[:-1])
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = packages | {"worker.py", "alembic.ini", "pyproject.toml", "deploy/healthcheck.py"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_deploy_runs_only_registered_cli_commands() -> None:
    """`billing worker|api|migrate` must be commands of cli.main:app (skips while some are unwritten)."""
    import typer

    from cli.main import app

    registered = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = {"worker", "api", "migrate"}
    missing = used - registered
    if missing:
        pytest.skip(f"not yet registered in cli.main: {sorted(missing)} (deploy/ runs them)")


def test_image_commands_are_the_cli_commands() -> None:
    commands = {tuple(service["command"]) for service in billing_services().values()}
    assert commands == {("billing", "migrate"), ("billing", "worker"), ("billing", "api")}
    docs = k8s_documents(None)
    args = {tuple(container["args"]) for _, container in workload_containers(docs)}
    assert args == {("billing", "migrate"), ("billing", "worker"), ("billing", "api")}


# --- settings: names, required values, secrets ------------------------------------------------


def test_dockerfile_env_settings_are_known() -> None:
    known = known_env_names()
    for name, args in dockerfile_instructions():
        if name == "ENV":
            for assignment in shlex.split(args):
                key = assignment.split("=", 1)[0]
                if key.startswith(ENV_PREFIX):
                    assert key in known, f"Dockerfile sets {key}, which foundation/settings.py does not read"


def test_compose_sets_only_known_settings_for_our_containers() -> None:
    allowed = known_env_names() | STANDARD_OTEL_VARS
    for name, service in billing_services().items():
        unknown = set(service["environment"]) - allowed
        assert not unknown, f"compose service {name} sets {sorted(unknown)}, which the settings do not read"


def test_manifests_set_only_known_settings(rendered_overlay_or_none: Path | None) -> None:
    allowed = known_env_names() | STANDARD_OTEL_VARS
    docs = k8s_documents(rendered_overlay_or_none)
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            unknown = set(doc.get("data", {})) - allowed
            assert not unknown, f"ConfigMap {doc['metadata']['name']} holds {sorted(unknown)}, which the settings do not read"
    for workload, container in workload_containers(docs):
        unknown = set(container_env(container, docs)) - allowed
        assert not unknown, f"{workload['metadata']['name']} sets {sorted(unknown)}, which the settings do not read"


@pytest.fixture(params=["files", "rendered"])
def rendered_overlay_or_none(request: pytest.FixtureRequest) -> Path | None:
    """Run a manifest test on the files one by one, and on the rendered overlay when kubectl exists."""
    if request.param == "files":
        return None
    return request.getfixturevalue("rendered_overlay")


def test_required_settings_are_set_for_worker_and_api_in_compose() -> None:
    services = billing_services()
    for role in ("billing-worker", "billing-api"):
        env = set(services[role]["environment"])
        missing = [what for what, names in REQUIRED.items() if not names & env]
        assert not missing, f"compose {role} lacks {missing}"
    assert services["billing-migrate"]["environment"]["DATABASE_URL"]


def test_required_settings_are_set_for_worker_and_api_in_manifests(rendered_overlay_or_none: Path | None) -> None:
    docs = k8s_documents(rendered_overlay_or_none)
    roles = {workload["metadata"]["name"]: container_env(container, docs) for workload, container in workload_containers(docs)}
    for role in ("billing-worker", "billing-api"):
        missing = [what for what, names in REQUIRED.items() if not names & set(roles[role])]
        assert not missing, f"{role} lacks {missing}"
    assert "DATABASE_URL" in roles["billing-migrate"]


def test_api_listens_where_the_probes_and_service_look(rendered_overlay_or_none: Path | None) -> None:
    docs = k8s_documents(rendered_overlay_or_none)
    for workload, container in workload_containers(docs):
        if workload["metadata"]["name"] != "billing-api":
            continue
        env = container_env(container, docs)
        assert env["BILLING_API_HOST"]["value"] == "0.0.0.0"
        port = int(env["BILLING_API_PORT"]["value"])
        assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [port]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    api_env = billing_services()["billing-api"]["environment"]
    assert api_env["BILLING_API_HOST"] == "0.0.0.0"


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build Settings from exactly `env` (nothing inherited from the test's own environment)."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in {"DATABASE_URL", "TEMPORAL_ADDRESS"}:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# Stand-ins for values that come from the Secret or deploy/.env, shaped as the settings expect.
_SECRET_STANDINS = {
    "DATABASE_URL": "postgresql://billing:x@db:5432/billing",
    "BILLING_GRAVITY_TOKENS": '{"1000000001": "t"}',
    "BILLING_GRAVITY_BASE_URL": "https://gravity.invalid/virtualterminal/v1",
}


def test_manifest_values_parse_as_settings(
    rendered_overlay_or_none: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are right is not enough: every value must also pass the settings' validation."""
    docs = k8s_documents(rendered_overlay_or_none)
    for workload, container in workload_containers(docs):
        env = {
            name: _SECRET_STANDINS.get(name, "standin") if "valueFrom" in entry else str(entry["value"])
            for name, entry in container_env(container, docs).items()
        }
        settings = _settings_from(env, monkeypatch)
        assert settings.database_url and settings.temporal_address, workload["metadata"]["name"]


def test_compose_values_parse_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def interpolate(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, operator, rest = match.group(1), match.group(2), match.group(3) or ""
            if operator == "-":
                return rest
            return _SECRET_STANDINS.get(name, "standin")

        return re.sub(r"\$\{([A-Z_]+)(?::([-?])([^}]*))?\}", one, value)

    for name, service in billing_services().items():
        env = {key: interpolate(str(value)) for key, value in service["environment"].items() if value is not None}
        settings = _settings_from(env, monkeypatch)
        assert settings.database_url and settings.temporal_address, name


def test_manifests_take_secrets_only_from_secret_refs(rendered_overlay_or_none: Path | None) -> None:
    docs = k8s_documents(rendered_overlay_or_none)
    assert not [doc for doc in docs if doc["kind"] == "Secret"], "a Secret is created by operators, never committed"
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not SECRET_VARS & set(doc.get("data", {})), "a secret sits in a ConfigMap"
    for workload, container in workload_containers(docs):
        for name, entry in container_env(container, docs).items():
            if name in SECRET_VARS:
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                assert ref and ref["name"] == "billing-secrets", f"{workload['metadata']['name']}: {name} is not from the Secret"
                assert "value" not in entry


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
    assignments = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#") and "=" in line
    )
    assert all(value == "" for value in assignments.values()), "deploy/.env.example must hold placeholders only"
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required <= set(assignments), f"missing from deploy/.env.example: {sorted(required - set(assignments))}"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), "deploy/.env must be git-ignored"


# --- Temporal ------------------------------------------------------------------------------------


def test_history_shards_are_512_everywhere() -> None:
    temporal = compose()["services"]["temporal"]["environment"]
    assert temporal["NUM_HISTORY_SHARDS"] == str(HISTORY_SHARDS)
    values = yaml.safe_load((DEPLOY / "helm" / "temporal-values.yaml").read_text())
    assert values["server"]["config"]["persistence"]["numHistoryShards"] == HISTORY_SHARDS


def test_helm_values_use_external_postgres_with_a_secret() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "temporal-values.yaml").read_text())
    stores = values["server"]["config"]["persistence"]["datastores"]
    assert set(stores) == {"default", "visibility"}
    for store in stores.values():
        sql = store["sql"]
        assert sql["pluginName"] == "postgres12"
        assert sql["existingSecret"] and "password" not in sql


def test_search_attributes_are_registered_with_their_types() -> None:
    script = (DEPLOY / "temporal" / "register-namespace.sh").read_text()
    registered = dict(re.findall(r"(\w+):(Text|Keyword|Int|Double|Bool|Datetime|KeywordList)\b", script))
    assert registered == SEARCH_ATTRIBUTES
    readme = (DEPLOY / "README.md").read_text()
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"--name {name} --type {kind}" in readme, f"deploy/README.md does not register {name}"


def test_temporal_schema_setup_covers_both_databases() -> None:
    script = (DEPLOY / "temporal" / "setup-schema.sh").read_text()
    for step in ("create", "setup-schema -v 0.0", "update-schema"):
        assert step in script
    assert "for db in temporal temporal_visibility" in script


def test_deploy_stages_let_migrations_run_first(rendered_overlay: Path) -> None:
    """README applies `deploy-stage=setup`, waits for the Job, then applies `deploy-stage=run`."""
    stages: dict[str, set[str]] = {"setup": set(), "run": set()}
    for doc in load_docs(rendered_overlay):
        stage = doc["metadata"].get("labels", {}).get("deploy-stage")
        assert stage in stages, f"{doc['kind']}/{doc['metadata']['name']} has no deploy-stage label"
        stages[stage].add(doc["kind"])
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Job"} <= stages["setup"]
    assert {"Deployment", "Service"} <= stages["run"] and "Job" not in stages["run"]


# --- the health check -----------------------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status = 200


def _healthcheck(role: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {"BILLING_API_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), role], capture_output=True, text=True, timeout=30, env=env
    )


def test_api_health_check_follows_get_health(health_server: http.server.ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    assert _healthcheck("api", port).returncode == 0
    _Health.status = 503
    assert _healthcheck("api", port).returncode == 1


def test_api_health_check_fails_when_nothing_listens(health_server: http.server.ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert _healthcheck("api", port).returncode == 1


def test_worker_health_check_finds_a_running_worker_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "billing", "worker"])
    try:
        time.sleep(0.2)
        result = _healthcheck("worker", 1)
        assert result.returncode == 0, result.stdout
        assert str(process.pid) in result.stdout
    finally:
        process.kill()
        process.wait()


def test_worker_health_check_ignores_zombies_and_other_processes(tmp_path: Path) -> None:
    healthcheck = load_healthcheck()

    def fake(pid: int, argv: list[str], state: str) -> None:
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (folder / "stat").write_text(f"{pid} (python) {state} 1 1 1")

    fake(10, ["/opt/venv/bin/python", "/opt/venv/bin/billing", "worker"], "Z")
    fake(11, ["/opt/venv/bin/python", "/opt/venv/bin/billing", "api"], "S")
    fake(12, ["/usr/bin/tini", "--", "billing", "worker"], "S")
    fake(13, ["python", "worker.py"], "T")
    fake(14, ["python", "-m", "http.server"], "S")
    found = healthcheck.billing_processes(tmp_path)
    assert found["api"] == [11]
    assert sorted(found["worker"]) == [10, 12, 13]
    running = [pid for pid in found["worker"] if healthcheck.process_is_running(pid, tmp_path)]
    assert running == [12]
