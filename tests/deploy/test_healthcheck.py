"""deploy/healthcheck.py, the image's HEALTHCHECK: the API's `GET /health`, and a live worker process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.deploy.artifacts import DEPLOY, HealthServer


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _healthcheck(role: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {"BILLING_API_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), role], capture_output=True, text=True, timeout=30, env=env)


def test_api_health_check_follows_get_health(health_server: HealthServer) -> None:
    port = health_server.server_address[1]
    assert _healthcheck("api", port).returncode == 0
    health_server.status = 503
    assert _healthcheck("api", port).returncode == 1


def test_api_health_check_fails_when_nothing_listens(health_server: HealthServer) -> None:
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
