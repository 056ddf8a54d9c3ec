"""`billing up` stops everything it started when it is told to stop (SIGTERM, Ctrl-C), and a run
killed with SIGKILL is cleaned up by the next one: no orphaned postgres or temporal process."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from stack_testing import BillingUp, processes_of, wait_gone, with_children


def _servers(data_dir: Path) -> tuple[list[psutil.Process], list[psutil.Process]]:
    running = processes_of(data_dir)
    postgres = [p for p in running if p.name() == "postgres"]
    temporal = [p for p in running if p.name() == "temporal"]
    return postgres, temporal


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_billing_up_stops_everything_on_signal(signum: int, data_dir: Path, stack_env: dict[str, str]) -> None:
    up = BillingUp(stack_env)
    output = up.wait_ready()
    assert f"web ui: http://127.0.0.1:{stack_env['BILLING_TEMPORAL_UI_PORT']}" in output
    assert f"temporal: 127.0.0.1:{stack_env['BILLING_TEMPORAL_PORT']}" in output
    postgres, temporal = _servers(data_dir)
    assert len(postgres) == 1 and len(temporal) == 1
    everything = with_children(postgres + temporal)  # postmaster's backends do not name the folder

    up.process.send_signal(signum)
    code, stdout, stderr = up.finish()

    assert code == 0, stderr
    assert stdout.rstrip().endswith("stopped")
    assert "Traceback" not in stderr
    assert wait_gone(everything, timeout=5) == []
    assert processes_of(data_dir) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_after_sigkill_temporal_dies_and_the_next_run_adopts_postgres(data_dir: Path, stack_env: dict[str, str]) -> None:
    first = BillingUp(stack_env)
    first.wait_ready()
    (postmaster,), (temporal,) = _servers(data_dir)

    first.process.kill()
    first.finish()
    # The kernel SIGTERMs the Temporal server when its parent dies; PostgreSQL is a daemon and stays.
    assert wait_gone([temporal], timeout=15) == []
    assert postmaster.is_running()

    second = BillingUp(stack_env)
    second.wait_ready()
    (postmaster_again,), (temporal_again,) = _servers(data_dir)
    assert postmaster_again.pid == postmaster.pid  # reused, not restarted
    everything = with_children([postmaster_again, temporal_again])

    second.process.send_signal(signal.SIGTERM)
    code, _, stderr = second.finish()
    assert code == 0, stderr
    assert wait_gone(everything, timeout=5) == []
    time.sleep(0.2)
    assert processes_of(data_dir) == []


@pytest.mark.parametrize("delay_s", [1.0, 2.5, 4.0])
def test_signal_during_startup_leaves_nothing_behind(delay_s: float, data_dir: Path, stack_env: dict[str, str]) -> None:
    """Whatever startup step the signal lands in (initdb, pg_ctl start, migrations), nothing stays."""
    up = BillingUp(stack_env)
    time.sleep(delay_s)
    seen = with_children(processes_of(data_dir))
    up.process.send_signal(signal.SIGTERM)
    code, _, stderr = up.finish()
    assert code in (0, -signal.SIGTERM), stderr  # -SIGTERM: it came before Python installed its handler
    assert "Traceback" not in stderr
    assert wait_gone(seen, timeout=5) == []
    assert processes_of(data_dir) == []
    # The folder still works afterwards (a cut-short initdb is cleared, not left broken).
    again = BillingUp(stack_env)
    again.wait_ready()
    again.process.send_signal(signal.SIGTERM)
    assert again.finish()[0] == 0
    assert processes_of(data_dir) == []


def test_leftovers_of_a_cut_short_initdb_do_not_block_the_next_start(data_dir: Path, stack_env: dict[str, str]) -> None:
    """A stopped run's cleanup can race with an initdb that is still writing, leaving files but no
    PG_VERSION; initdb refuses a folder that is not empty, so the next start clears them first."""
    leftovers = data_dir / "postgres" / "global"
    leftovers.mkdir(parents=True)
    (leftovers / "pg_control").write_bytes(b"half written")

    up = BillingUp(stack_env)
    up.wait_ready()
    up.process.send_signal(signal.SIGTERM)
    code, _, stderr = up.finish()

    assert code == 0, stderr
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert processes_of(data_dir) == []
