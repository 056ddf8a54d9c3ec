#!/usr/bin/env python3
"""One entry point for a fresh machine: builds `.venv/` and runs the demo or the tests.

Only the standard library is used here, because this file runs before anything is installed.

    python3 dev.py demo [demo options]   # the main job
    python3 dev.py test [pytest options] # ruff and mypy, then the whole test suite

The virtual environment is rebuilt only when `pyproject.toml` or `requirements.lock` change
(their hash is kept in `.venv/.installed`), so the second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
INPUTS = [ROOT / "pyproject.toml", ROOT / "requirements.lock"]


def _inputs_hash() -> str:
    digest = hashlib.sha256()
    for path in INPUTS:
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create `.venv/` and install the project with its pinned test extras if anything changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs on any python3, before pip enforces requires-python
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    wanted = _inputs_hash()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    print("Installing pinned dependencies (first run only) ...", flush=True)
    subprocess.run([*pip, "install", "--upgrade", "pip==25.3"], check=True)
    install = [*pip, "install", "-e", f"{ROOT}[test]"]
    if (ROOT / "requirements.lock").exists():
        install += ["-c", str(ROOT / "requirements.lock")]
    subprocess.run(install, check=True)
    STAMP.write_text(wanted)


def static_checks() -> list[str]:
    """Run ruff and mypy (configured in pyproject.toml) over the repository; the names of those that found problems."""
    checks = {
        "ruff": [str(BIN / "ruff"), "check", "."],
        "ruff format": [str(BIN / "ruff"), "format", "--check", "."],
        "mypy": [str(BIN / "python"), "-m", "mypy"],
    }
    return [name for name, args in checks.items() if subprocess.call(args, cwd=ROOT) != 0]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    os.chdir(ROOT)
    if command == "demo":
        return subprocess.call([str(BIN / "billing"), "demo", *rest])
    failed = static_checks()
    if failed:
        print(f"dev.py test: {' and '.join(failed)} found problems (listed above); the tests were not run.", file=sys.stderr, flush=True)
        return 1
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
