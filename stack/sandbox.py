"""The Gravity sandbox `billing up` runs beside PostgreSQL and Temporal, its state kept in the data folder.

Why in the stack: with no `BILLING_GRAVITY_BASE_URL` the worker and the API talk to the sandbox on
`sandbox_host:sandbox_port`; if nothing listens there, every charge fails. Its state file keeps the
saved cards and transactions across restarts, so cards saved in the database stay usable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.sandbox.app import BASE_PATH
from stack.errors import StackError
from stack.processes import port_in_use

SANDBOX_STATE_FILE = "sandbox.json"


@dataclass(frozen=True)
class LocalSandbox:
    """Where the sandbox listens; `started` is False when one was already running there."""

    root_url: str
    state_file: Path | None
    started: bool

    @property
    def base_url(self) -> str:
        return self.root_url + BASE_PATH


def sandbox_root_url(settings: Settings) -> str:
    return f"http://{settings.sandbox_host}:{settings.sandbox_port}"


def sandbox_state_file(settings: Settings) -> Path:
    """The default state file: `<data_dir>/sandbox.json`."""
    return Path(settings.data_dir).expanduser().absolute() / SANDBOX_STATE_FILE


def sandbox_answers(root_url: str, timeout: float = 1.0) -> bool:
    """Whether a Gravity sandbox answers its health check at `root_url`."""
    try:
        return httpx.get(f"{root_url}/_sandbox/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def sandbox_merchants(settings: Settings) -> dict[str, str]:
    """The merchant the sandbox accepts, with the token the engine sends it (see stack.gravity_config)."""
    own = settings.gravity_tokens.get(SANDBOX_OID)
    return {SANDBOX_OID: own.get_secret_value() if own else SANDBOX_TOKEN}


@contextlib.contextmanager
def local_sandbox(settings: Settings) -> Iterator[LocalSandbox]:
    """Run the sandbox on the configured host and port until the block ends, or join the one already there."""
    from gravity.sandbox.server import SandboxServer  # on use: FastAPI and the sandbox's routes

    root = sandbox_root_url(settings)
    if sandbox_answers(root):
        yield LocalSandbox(root, None, started=False)
        return
    if port_in_use(settings.sandbox_port, settings.sandbox_host):
        raise StackError(f"port {settings.sandbox_port} is in use: set BILLING_SANDBOX_PORT or stop what holds it")
    state_file = sandbox_state_file(settings)
    try:
        server = SandboxServer(sandbox_merchants(settings), port=settings.sandbox_port, host=settings.sandbox_host, state_file=state_file)
    except ValueError as error:  # a state file cut short or edited by hand
        raise StackError(f"cannot read the sandbox's state file {state_file} ({error}): move it away to start the sandbox empty") from None
    server.start()
    try:
        yield LocalSandbox(root, state_file, started=True)
    finally:
        server.stop()
