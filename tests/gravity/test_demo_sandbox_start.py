"""The demo's sandbox process starts while the demo does other work, and answers once waited for."""

from __future__ import annotations

import httpx

from demo.sandbox_process import SandboxProcess, sandbox_process


def test_the_sandbox_answers_once_waited_for() -> None:
    with sandbox_process(ready=False) as sandbox:
        assert sandbox.process is not None and sandbox.process.poll() is None
        sandbox.wait_ready(timeout_s=60)
        assert httpx.get(f"{sandbox.root_url}/_sandbox/health", timeout=5).status_code == 200
        process = sandbox.process
    assert process.poll() is not None  # stopped with the block
    SandboxProcess("http://127.0.0.1:1").wait_ready(timeout_s=0)  # one not started here: nothing to wait for
