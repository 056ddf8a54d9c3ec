"""Fixtures for the embedded-stack tests: a private data folder and a subprocess environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from stack_testing import ADDRESS_VARIABLES, free_port, processes_of, with_children


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A short private data folder (unix socket paths must stay short); anything left running in
    it is killed at teardown so one failing test does not leak servers into the others."""
    path = tmp_path_factory.mktemp("stk") / "data"
    yield path
    leftovers = with_children(processes_of(path))
    for process in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@pytest.fixture
def stack_env(data_dir: Path) -> dict[str, str]:
    """Environment for a `billing` subprocess: embedded everything (the sandbox too), private folder, free ports."""
    env = {k: v for k, v in os.environ.items() if k not in ADDRESS_VARIABLES}
    env.update(
        BILLING_DATA_DIR=str(data_dir),
        BILLING_TEMPORAL_PORT=str(free_port()),
        BILLING_TEMPORAL_UI_PORT=str(free_port()),
        BILLING_SANDBOX_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env
