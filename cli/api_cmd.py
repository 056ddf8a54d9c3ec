"""`billing api`: serve the HTTP API (uvicorn) against the configured stack, or the embedded one.

Without `BILLING_API_TOKEN` the command refuses to start when the database or Temporal is configured
(either may be production's); only on the wholly embedded stack does it fall back to the well-known
development token, and says so.
"""

from __future__ import annotations

import asyncio

import typer
import uvicorn
from pydantic import SecretStr

from cli.errors import err_console, fail, handles_errors
from foundation.settings import DEV_API_TOKEN, Settings
from foundation.telemetry import configure_logging, setup_telemetry
from stack.embedded import EmbeddedStack, load_settings, redact_url


async def _serve(settings: Settings, database_url: str, temporal_address: str, namespace: str, host: str, port: int) -> None:
    # On use: the app, the models and the worker's client load FastAPI, SQLAlchemy and every workflow,
    # which would slow the start of every `billing` command.
    from api.app import create_app
    from models.db import get_engine
    from worker import connect

    configure_logging(settings.log_level)
    telemetry = setup_telemetry(settings, service_name="vet-billing-api")
    try:
        client = await connect(temporal_address, namespace, telemetry=telemetry)
    except RuntimeError as error:
        fail(f"cannot reach Temporal at {temporal_address}", str(error))
    engine = get_engine(database_url, settings.db_pool_size)
    app = create_app(engine, client, settings, task_queue=settings.temporal_task_queue, telemetry=telemetry)
    config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    await uvicorn.Server(config).serve()


def development_stack(settings: Settings) -> bool:
    """True only when both the database and Temporal are the embedded ones: a configured database
    (`DATABASE_URL`) holds real clinics' data even while Temporal is still the embedded dev server."""
    return settings.database_url is None and settings.temporal_address is None


@handles_errors
def api(
    host: str | None = typer.Option(None, help="Interface to listen on (default: BILLING_API_HOST)."),
    port: int | None = typer.Option(None, help="TCP port (default: BILLING_API_PORT)."),
) -> None:
    """Serve the HTTP API for the billing system (Ctrl-C stops it)."""
    settings = load_settings()
    if settings.api_token is None:
        if not development_stack(settings):
            fail("BILLING_API_TOKEN is not set: the API needs a bearer credential (a long random string) against a configured database or Temporal")
        err_console.print("BILLING_API_TOKEN is not set: using the development token (embedded stack only)", style="yellow")
        settings = settings.model_copy(update={"api_token": SecretStr(DEV_API_TOKEN)})
    with EmbeddedStack(settings) as addresses:
        assert addresses.temporal_address is not None
        typer.echo(f"database {redact_url(addresses.database_url)}, temporal {addresses.temporal_address}")
        typer.echo(f"API on http://{host or settings.api_host}:{port if port is not None else settings.api_port} (OpenAPI at /docs)")
        try:
            asyncio.run(
                _serve(
                    settings,
                    addresses.database_url,
                    addresses.temporal_address,
                    addresses.temporal_namespace,
                    host or settings.api_host,
                    port if port is not None else settings.api_port,
                )
            )
        except KeyboardInterrupt:
            typer.echo("stopped")


def register(app: typer.Typer) -> None:
    """Add the API command to the `billing` app."""
    app.command("api")(api)
