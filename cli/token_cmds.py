"""`billing token create | list | revoke`: the operator's scoped API credentials.

The whole token is printed once, by `create`, and never again: only a hash of its secret is kept.
Bad input (a scope that does not exist, an unknown location, a name taken) is one red line and exit
code 2, and changes nothing.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.table import Table
from rich.text import Text

from cli.errors import BAD_INPUT, err_console
from cli.operator_stack import connection, console, engine_of, local_time, operator_errors, print_json

token_app = typer.Typer(help="Scoped API tokens: create (the secret is shown once), list, revoke.", no_args_is_help=True)


def _bad(message: str) -> NoReturn:
    err_console.print(Text(message, style="bold red"))
    raise typer.Exit(code=BAD_INPUT)


@token_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A name for the token, shown in the audit trail (letters, digits, . _ -)."),
    scope: str = typer.Option(..., "--scope", help="billing | front_desk | finance | refunds"),
    location: list[str] = typer.Option([], "--location", help="A location the token reaches (repeat for several)."),
    all_locations: bool = typer.Option(False, "--all-locations", help="Reach every location, present and future."),
) -> None:
    """Make a token and print it once: store it where the billing system keeps secrets."""
    from operations.tokens import TokenRefused, create_token

    if bool(location) == all_locations:
        _bad("location: give --location LOCATION (one or more) or --all-locations, not both and not neither")
    conn = connection(temporal=False)
    with operator_errors(conn):
        try:
            token = create_token(engine_of(conn), name=name, scope=scope, locations=None if all_locations else location)
        except TokenRefused as error:
            _bad(str(error))
    err_console.print(Text(f"token {name} created; it is shown only this once:", style="bold"))
    typer.echo(token)


@token_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print the tokens as JSON.")) -> None:
    """The tokens, their scopes and reach (never their secrets)."""
    from operations.tokens import list_tokens

    conn = connection(temporal=False)
    with operator_errors(conn, as_json=as_json):
        tokens = list_tokens(engine_of(conn))
    if as_json:
        print_json(
            [
                {
                    "name": t.name,
                    "scope": t.scope,
                    "locations": t.locations,
                    "created_at": t.created_at.isoformat() if t.created_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                }
                for t in tokens
            ]
        )
        return
    table = Table("name", "scope", "locations", "created", "last used", "revoked")
    for t in tokens:
        reach = "every location" if t.locations is None else ", ".join(t.locations)
        table.add_row(
            t.name,
            t.scope,
            reach,
            local_time(t.created_at),
            local_time(t.last_used_at) if t.last_used_at else "-",
            local_time(t.revoked_at) if t.revoked_at else "-",
        )
    console.print(table)


@token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: it answers 401 from now on."""
    from operations.tokens import TokenRefused, revoke_token

    conn = connection(temporal=False)
    with operator_errors(conn):
        try:
            changed = revoke_token(engine_of(conn), name)
        except TokenRefused as error:
            _bad(str(error))
    typer.echo(f"token {name} revoked" if changed else f"token {name} was already revoked")


def register(app: typer.Typer) -> None:
    """Add `billing token ...` to the `billing` app."""
    app.add_typer(token_app, name="token")
