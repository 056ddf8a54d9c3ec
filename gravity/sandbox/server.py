"""Run the sandbox in-process: uvicorn in a background thread on a given or free loopback port.

Tests and the demo use `SandboxServer` as a context manager; `billing sandbox` runs the same app in
the foreground. `base_url` has the real API's shape (`.../virtualterminal/v1`), so pointing the
client at Gravity instead is configuration only.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from gravity import conventions as C
from gravity.sandbox.app import BASE_PATH, create_app
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.state import SandboxState
from gravity.sandbox.store import SaveWhen

__all__ = ["BASE_PATH", "SandboxServer", "ThreadedUvicorn", "build_sandbox_app"]


def build_sandbox_app(
    oids: dict[str, str],
    *,
    postback_url: str | None = None,
    postback_secret: str | None = None,
    state_file: str | Path | None = None,
    save: SaveWhen = "change",
    devices: dict[str, list[str]] | None = None,
    postback_backoff_s: float = C.POSTBACK_BACKOFF_BASE_SECONDS,
) -> tuple[ASGIApp, SandboxState, Postman]:
    """The ASGI app plus its state and postback sender (for callers that run uvicorn themselves)."""
    state = SandboxState(oids, devices=devices, state_file=state_file, save=save)
    postman = Postman(postback_url, postback_secret, backoff_base_s=postback_backoff_s)
    return create_app(state, postman), state, postman


class ThreadedUvicorn:
    """Any ASGI app under uvicorn in a daemon thread; `start()` returns once the port is bound."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        # A bounded graceful shutdown: an injected "slow" request must not hold a test run hostage.
        self._config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> ThreadedUvicorn:
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class SandboxServer:
    """The Gravity sandbox on loopback, for tests and the demo.

    `oids` maps each merchant OID to the bearer token it accepts. Use as a context manager, or call
    `start()` / `stop()`.
    """

    def __init__(
        self,
        oids: dict[str, str],
        port: int = 0,
        postback_url: str | None = None,
        postback_secret: str | None = None,
        state_file: str | Path | None = None,
        *,
        save: SaveWhen = "change",
        host: str = "127.0.0.1",
        devices: dict[str, list[str]] | None = None,
        postback_backoff_s: float = C.POSTBACK_BACKOFF_BASE_SECONDS,
        log_level: str = "warning",
    ) -> None:
        self.app, self.state, self.postman = build_sandbox_app(
            oids,
            postback_url=postback_url,
            postback_secret=postback_secret,
            state_file=state_file,
            save=save,
            devices=devices,
            postback_backoff_s=postback_backoff_s,
        )
        self._runner = ThreadedUvicorn(self.app, host=host, port=port, log_level=log_level)

    def start(self) -> SandboxServer:
        self._runner.start()
        return self

    def stop(self) -> None:
        self._runner.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._runner.port

    @property
    def root_url(self) -> str:
        """Where `/_sandbox/` lives: `http://127.0.0.1:PORT`."""
        return self._runner.url

    @property
    def base_url(self) -> str:
        """The emergepay base URL: `http://127.0.0.1:PORT/virtualterminal/v1`."""
        return self._runner.url + BASE_PATH
