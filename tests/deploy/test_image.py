"""The container image: its Dockerfile (hadolint, base, user, what it copies, its settings) and the commands it runs."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from foundation.settings import ENV_PREFIX
from tests.deploy.artifacts import (
    DOCKERFILE,
    ROOT,
    billing_services,
    k8s_documents,
    known_env_names,
    run,
    tool,
    workload_containers,
)


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


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = run(tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN apt-get install curl\n")
    result = run(tool("hadolint"), sloppy)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


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
    import typer.core

    from cli.main import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    registered = set(group.commands)
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


def test_dockerfile_env_settings_are_known() -> None:
    known = known_env_names()
    for name, args in dockerfile_instructions():
        if name == "ENV":
            for assignment in shlex.split(args):
                key = assignment.split("=", 1)[0]
                if key.startswith(ENV_PREFIX):
                    assert key in known, f"Dockerfile sets {key}, which foundation/settings.py does not read"
