"""The last demo's gateway after the demo: its sandbox's kept state, served in-process for one command.

Why: the demo's sandbox runs in its own process and stops with the demo, so the sandbox `billing up`
runs never saw the demo's sales; reconciling the demo's books needs the gateway that took them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.listing import SandboxListing


@contextmanager
def kept_demo_gateway(state_file: Path, *, timeout_s: float) -> Iterator[GatewayDirectory]:
    """Gravity clients (with the transaction list) for the demo's sandbox, restored from `state_file`
    on a free loopback port until the block ends; the file is only read."""
    from gravity.sandbox.server import SandboxServer  # on use: FastAPI and the sandbox's routes

    # The demo's merchant and credential (demo.play), whatever the CLI's own settings say.
    with SandboxServer({SANDBOX_OID: SANDBOX_TOKEN}, state_file=state_file, save="never", log_level="critical") as server:
        yield GatewayDirectory(server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=timeout_s, listing=SandboxListing(server.base_url))
