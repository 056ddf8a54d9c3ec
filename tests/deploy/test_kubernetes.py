"""The Kubernetes manifests: strict schemas on two versions, settings and secrets, probes, and the deploy stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.artifacts import (
    REQUIRED,
    SECRET_STANDINS,
    SECRET_VARS,
    STANDARD_OTEL_VARS,
    base_resource_files,
    billing_services,
    container_env,
    k8s_documents,
    known_env_names,
    load_docs,
    overlay_resource_files,
    run,
    settings_from,
    tool,
    workload_containers,
)

# Kubernetes versions the manifests must be valid for: an older one still common on managed
# clusters, and the newest kubernetes-validate ships.
K8S_VERSIONS = ["1.30.0", "1.37.0"]


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


def test_manifest_values_parse_as_settings(rendered_overlay_or_none: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names are right is not enough: every value must also pass the settings' validation."""
    docs = k8s_documents(rendered_overlay_or_none)
    for workload, container in workload_containers(docs):
        env = {
            name: SECRET_STANDINS.get(name, "standin") if "valueFrom" in entry else str(entry["value"])
            for name, entry in container_env(container, docs).items()
        }
        settings = settings_from(env, monkeypatch)
        assert settings.database_url and settings.temporal_address, workload["metadata"]["name"]


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


def test_deploy_stages_let_migrations_run_first(rendered_overlay: Path) -> None:
    """README applies `deploy-stage=setup`, waits for the Job, then applies `deploy-stage=run`."""
    stages: dict[str, set[str]] = {"setup": set(), "run": set()}
    for doc in load_docs(rendered_overlay):
        stage = doc["metadata"].get("labels", {}).get("deploy-stage")
        assert stage in stages, f"{doc['kind']}/{doc['metadata']['name']} has no deploy-stage label"
        stages[stage].add(doc["kind"])
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Job"} <= stages["setup"]
    assert {"Deployment", "Service"} <= stages["run"] and "Job" not in stages["run"]
