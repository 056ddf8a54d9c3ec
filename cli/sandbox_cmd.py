"""`billing sandbox`: the Gravity emergepay sandbox in the foreground, for the demo and manual tries;
and, as `billing sandbox tap|tokenize|cards`, what a person does at the sandbox in a first hour.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import typer
import uvicorn

from cli.errors import fail
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity import conventions as C
from gravity.sandbox.app import BASE_PATH
from gravity.sandbox.server import build_sandbox_app
from stack.gravity_config import uses_sandbox
from stack.sandbox import sandbox_merchants, sandbox_root_url, sandbox_state_file


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
    return token if token == SANDBOX_TOKEN else "(set, not shown)"


def sandbox(
    ctx: typer.Context,
    host: str = typer.Option(_DEFAULTS.sandbox_host, help="Interface to listen on."),
    port: int = typer.Option(_DEFAULTS.sandbox_port, help="TCP port (0 = any free port)."),
    oid: str = typer.Option(SANDBOX_OID, help="Merchant OID the sandbox accepts."),
    token: str = typer.Option(SANDBOX_TOKEN, help="Bearer token accepted for that OID.", show_default="the sandbox's demo token"),
    postback_url: str | None = typer.Option(None, help="Where signed postbacks are POSTed (none: not sent)."),
    postback_secret: str | None = typer.Option(None, help="HMAC-SHA512 key for postback signatures.", show_default=False),
    state_file: Path | None = typer.Option(
        None, help="JSON file keeping saved cards and transactions across restarts (default: sandbox.json in BILLING_DATA_DIR)."
    ),
    memory_only: bool = typer.Option(False, "--memory-only", help="Keep no state file: a restart forgets every card."),
    save_at_stop: bool = typer.Option(
        False, "--save-at-stop", help="Write the state file once when the sandbox stops, not after every change (a long run's sandbox)."
    ),
) -> None:
    """Run the Gravity emergepay sandbox in the foreground (Ctrl-C stops it); or tap, tokenize, cards."""
    if ctx.invoked_subcommand is not None:
        return
    kept = None if memory_only else (state_file or sandbox_state_file(_settings()))
    try:
        app, _, _ = build_sandbox_app(
            {oid: token}, postback_url=postback_url, postback_secret=postback_secret, state_file=kept, save="stop" if save_at_stop else "change"
        )
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
    typer.echo(f"  --state-file      {kept or '(memory only)'}{' (written when the sandbox stops)' if kept and save_at_stop else ''}")
    typer.echo(f"  base URL          http://{shown}:{port}{BASE_PATH}")
    typer.echo(f"  control surface   http://{shown}:{port}/_sandbox/")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def _local_sandbox_settings() -> Settings:
    """The settings, refusing when the engine talks to a real Gravity: test cards belong to the sandbox only."""
    settings = _settings()
    if not uses_sandbox(settings):
        fail("BILLING_GRAVITY_BASE_URL is set: these commands work only on the local sandbox")
    return settings


def tap(
    device: str = typer.Argument(..., help="The terminal's device name, like front-desk-1."),
    card: str = typer.Option(C.APPROVED_VISA, "--card", help="Test card number the customer presents (see `billing sandbox cards`)."),
    oid: str = typer.Option(SANDBOX_OID, "--oid", help="The merchant (the location's Gravity OID)."),
) -> None:
    """Play the customer at a sandbox terminal: present a card to the amount it shows."""
    from gravity.sandbox.control import SandboxControl, SandboxControlError

    root = sandbox_root_url(_local_sandbox_settings())
    try:
        with SandboxControl(root) as control:
            answer = control.present_card(oid, device, card_number=card)
    except SandboxControlError as error:
        fail(f"{device}: {error}", "start a payment first: billing terminal-pay INVOICE --device " + device)
    except OSError as error:  # httpx's connection errors
        fail(f"no sandbox answers at {root} ({error}): start billing up")
    typer.echo(json.dumps(answer, indent=2))


def tokenize(
    card: str = typer.Option(C.APPROVED_VISA, "--card", help="Test card number (see `billing sandbox cards`)."),
    exp: str = typer.Option("1230", "--exp", help="Expiry as MMYY."),
) -> None:
    """Save a test card at the sandbox and print the body to save it for a client (POST /clients/{id}/cards)."""
    import httpx

    from gravity.client import GravityClient

    settings = _local_sandbox_settings()
    oid, token = next(iter(sandbox_merchants(settings).items()))
    base = sandbox_root_url(settings) + BASE_PATH

    external_id = f"cli-{uuid.uuid4().hex[:12]}"

    async def go():
        async with GravityClient(base, oid, token) as gravity:
            return await gravity.tokenize(card_number=card, exp_mmyy=exp, external_id=external_id)

    try:
        result = asyncio.run(go())
    except httpx.HTTPError as error:
        fail(f"no sandbox answers at {sandbox_root_url(settings)} ({error}): start billing up")
    if result.card_ref is None:
        fail(f"the sandbox did not save the card: {result.result_message}")
    body = {
        "gravity_ref": result.card_ref,
        "external_transaction_id": external_id,
        "masked_number": result.masked_account,
        "brand": result.card_brand,
        "exp_month": int(exp[:2]),
        "exp_year": 2000 + int(exp[2:]),
        "fingerprint": result.fingerprint,
    }
    typer.echo(json.dumps(body, indent=2))


def cards() -> None:
    """The sandbox's test card numbers and what each does."""
    for number, message in C.TEST_CARDS.items():
        typer.echo(f"{number}  {message}")
    typer.echo(f"{C.DECLINES_AFTER_SAVE_CARD}  saves and taps fine; every later charge of the saved card: {C.DECLINES_AFTER_SAVE_MESSAGE}")
    typer.echo("any other Luhn-valid Visa, Mastercard, Amex or Discover number approves; an expiry in the past declines")


def register(app: typer.Typer) -> None:
    """Add the sandbox command, with its tap, tokenize and cards subcommands, to the `billing` app."""
    group = typer.Typer(invoke_without_command=True, no_args_is_help=False, pretty_exceptions_enable=False)
    group.callback()(sandbox)
    group.command("tap")(tap)
    group.command("tokenize")(tokenize)
    group.command("cards")(cards)
    app.add_typer(group, name="sandbox")
