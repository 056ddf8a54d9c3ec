"""`billing sandbox`: the Gravity emergepay sandbox in the foreground, for the demo and manual tries."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import uvicorn

from cli.errors import fail
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.sandbox.app import BASE_PATH
from gravity.sandbox.server import build_sandbox_app
from stack.sandbox import sandbox_state_file


def _settings() -> Settings:
    """The environment's settings, or the built-in defaults if the environment is broken (the
    sandbox must still start so the demo can run; other commands report the bad setting)."""
    try:
        return Settings()
    except Exception:  # noqa: BLE001 - a bad unrelated BILLING_* variable must not stop the sandbox
        return Settings.model_construct()


_DEFAULTS = _settings()


def _shown_token(token: str) -> str:
    """The development token whole (people copy it into their settings), any other not at all."""
    return token if token == SANDBOX_TOKEN else "(as given, not shown)"


def sandbox(
    host: str = typer.Option(_DEFAULTS.sandbox_host, help="Interface to listen on."),
    port: int = typer.Option(_DEFAULTS.sandbox_port, help="TCP port (0 = any free port)."),
    oid: str = typer.Option(SANDBOX_OID, help="Merchant OID the sandbox accepts."),
    token: str = typer.Option(SANDBOX_TOKEN, help="Bearer token accepted for that OID."),
    postback_url: Optional[str] = typer.Option(None, help="Where signed postbacks are POSTed (none: not sent)."),
    postback_secret: Optional[str] = typer.Option(None, help="HMAC-SHA512 key for postback signatures.", show_default=False),
    state_file: Optional[Path] = typer.Option(
        None, help="JSON file keeping saved cards and transactions across restarts (default: sandbox.json in BILLING_DATA_DIR)."
    ),
    memory_only: bool = typer.Option(False, "--memory-only", help="Keep no state file: a restart forgets every card."),
) -> None:
    """Run the Gravity emergepay sandbox in the foreground (Ctrl-C stops it)."""
    kept = None if memory_only else (state_file or sandbox_state_file(_DEFAULTS))
    try:
        app, _, _ = build_sandbox_app({oid: token}, postback_url=postback_url, postback_secret=postback_secret, state_file=kept)
    except ValueError as error:  # a state file cut short or edited by hand
        fail(f"cannot read the sandbox's state file {kept} ({error}): move it away, or use --memory-only")
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo("Gravity emergepay sandbox")
    typer.echo(f"  --host            {host}")
    typer.echo(f"  --port            {port}")
    typer.echo(f"  --oid             {oid}")
    typer.echo(f"  --token           {_shown_token(token)}")
    typer.echo(f"  --postback-url    {postback_url or '(none)'}")
    typer.echo(f"  --postback-secret {'(set, not shown)' if postback_secret else '(none)'}")
    typer.echo(f"  --state-file      {kept or '(memory only)'}")
    typer.echo(f"  base URL          http://{shown}:{port}{BASE_PATH}")
    typer.echo(f"  control surface   http://{shown}:{port}/_sandbox/")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    """Add the sandbox command to the `billing` app."""
    app.command("sandbox")(sandbox)
