"""`billing sandbox`: the Gravity emergepay sandbox in the foreground, for the demo and manual tries."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.sandbox.app import BASE_PATH
from gravity.sandbox.server import build_sandbox_app


def _settings() -> Settings:
    """The environment's settings, or the built-in defaults if the environment is broken (the
    sandbox must still start so the demo can run; other commands report the bad setting)."""
    try:
        return Settings()
    except Exception:  # noqa: BLE001 - a bad unrelated BILLING_* variable must not stop the sandbox
        return Settings.model_construct()


_DEFAULTS = _settings()


def _mask(secret: str | None) -> str:
    if not secret:
        return "(none)"
    return secret[:2] + "*" * max(3, len(secret) - 2) if len(secret) > 4 else "****"


def sandbox(
    host: str = typer.Option(_DEFAULTS.sandbox_host, help="Interface to listen on."),
    port: int = typer.Option(_DEFAULTS.sandbox_port, help="TCP port (0 = any free port)."),
    oid: str = typer.Option(SANDBOX_OID, help="Merchant OID the sandbox accepts."),
    token: str = typer.Option(SANDBOX_TOKEN, help="Bearer token accepted for that OID.", show_default=_mask(SANDBOX_TOKEN)),
    postback_url: str | None = typer.Option(None, help="Where signed postbacks are POSTed (none: not sent)."),
    postback_secret: str | None = typer.Option(None, help="HMAC-SHA512 key for postback signatures."),
    state_file: Path | None = typer.Option(None, help="JSON file to keep state in across restarts (none: memory only)."),
) -> None:
    """Run the Gravity emergepay sandbox in the foreground (Ctrl-C stops it)."""
    app, _, _ = build_sandbox_app(
        {oid: token}, postback_url=postback_url, postback_secret=postback_secret, state_file=state_file
    )
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo("Gravity emergepay sandbox")
    typer.echo(f"  --host            {host}")
    typer.echo(f"  --port            {port}")
    typer.echo(f"  --oid             {oid}")
    typer.echo(f"  --token           {_mask(token)}")
    typer.echo(f"  --postback-url    {postback_url or '(none)'}")
    typer.echo(f"  --postback-secret {_mask(postback_secret)}")
    typer.echo(f"  --state-file      {state_file or '(memory only)'}")
    typer.echo(f"  base URL          http://{shown}:{port}{BASE_PATH}")
    typer.echo(f"  control surface   http://{shown}:{port}/_sandbox/")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    """Add the sandbox command to the `billing` app."""
    app.command("sandbox")(sandbox)
