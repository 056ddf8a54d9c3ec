"""Fixtures for the offline checks of everything under deploy/: schemas, linters, entry points and settings.

Why: nothing here can start Docker or reach a cluster, yet a typo in a manifest, a setting name the
engine does not read, or a secret pasted into a file would only show up at the first real deploy.
These tests catch them in CI with the tools pinned in the `test` extra, run from this virtualenv.
Each tool is also shown a broken input once, so a tool that silently checks nothing fails here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.artifacts import K8S_OVERLAY, HealthHandler, HealthServer, kubectl, run


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


@pytest.fixture(params=["files", "rendered"])
def rendered_overlay_or_none(request: pytest.FixtureRequest) -> Path | None:
    """Run a manifest test on the files one by one, and on the rendered overlay when kubectl exists."""
    if request.param == "files":
        return None
    return request.getfixturevalue("rendered_overlay")


@pytest.fixture()
def health_server() -> Iterator[HealthServer]:
    server = HealthServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
