"""Health check for the billing image, used by Docker's HEALTHCHECK, compose and Kubernetes exec probes.

Why a script and not `curl`: the slim image has no curl, and one image runs two roles.

- `api`: GET http://127.0.0.1:$BILLING_API_PORT/health must answer 200 within 3 s. This is the
  real signal; Kubernetes uses an httpGet probe for the same path.
- `worker`: a Temporal worker serves no port, and `billing worker --check` does not exist, so the
  check is that a `billing worker` (or `python worker.py`) process is alive and not a zombie or
  stopped. That is deliberately weak: it catches a dead or frozen-by-signal process, not a worker
  stuck inside Python. A stronger signal (a heartbeat file the worker touches after each poll)
  needs support in worker.py first; see deploy/README.md.

Run with the role as the only argument, or with none to detect the role from the processes in
the container (Docker's HEALTHCHECK cannot know which command the container was started with).
Exit 0 = healthy, 1 = unhealthy. Standard library only, so it works wherever Python does.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_API_PORT = 8780
HTTP_TIMEOUT_S = 3.0
ROLES = ("api", "worker")


def billing_processes(proc: Path = Path("/proc")) -> dict[str, list[int]]:
    """Map each role to the pids running it: `billing <role>`, or `python worker.py` for a worker."""
    found: dict[str, list[int]] = {role: [] for role in ROLES}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # the process exited while we looked
        args = [part.decode(errors="replace") for part in argv if part]
        for index, arg in enumerate(args):
            name = os.path.basename(arg)
            if name == "billing" and index + 1 < len(args) and args[index + 1] in ROLES:
                found[args[index + 1]].append(int(entry.name))
                break
            if name == "worker.py":
                found["worker"].append(int(entry.name))
                break
    return found


def process_is_running(pid: int, proc: Path = Path("/proc")) -> bool:
    """True unless the process is gone, a zombie (Z/X) or stopped (T/t)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X", "T", "t"}


def api_is_healthy(port: int) -> bool:
    """GET /health on loopback answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=HTTP_TIMEOUT_S) as response:  # fixed loopback URL
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def check(role: str | None) -> tuple[bool, str]:
    """Run the check for `role` (None: detect it) and say why it passed or failed."""
    processes = billing_processes() if role != "api" else {}
    if role is None:
        role = "api" if processes.get("api") else "worker"
    if role == "api":
        port = int(os.environ.get("BILLING_API_PORT") or DEFAULT_API_PORT)
        healthy = api_is_healthy(port)
        return healthy, f"api: GET /health on port {port} {'answered 200' if healthy else 'failed'}"
    pids = processes.get("worker", [])
    alive = [pid for pid in pids if process_is_running(pid)]
    if alive:
        return True, f"worker: running as pid {', '.join(map(str, alive))}"
    return False, "worker: no running `billing worker` / `worker.py` process"


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else None
    if role is not None and role not in ROLES:
        print(f"usage: healthcheck.py [{'|'.join(ROLES)}]", file=sys.stderr)
        return 2
    healthy, reason = check(role)
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
