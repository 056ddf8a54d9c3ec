"""Every YAML file under deploy/ passes yamllint with the project's rules."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.artifacts import DEPLOY, run, tool


def test_yamllint_passes_on_deploy() -> None:
    result = run(tool("yamllint"), "--strict", "-c", DEPLOY / ".yamllint", DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_rejects_bad_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")  # duplicate key
    result = run(tool("yamllint"), "--strict", "-c", DEPLOY / ".yamllint", bad)
    assert result.returncode != 0
