"""`billing token create | list | revoke` on the real database, and the CLI named as the actor."""

from __future__ import annotations

import getpass

from sqlalchemy import Engine, text

from operations.audit import audit_trail
from operations.tokens import authenticate
from tests.cli.conftest import Billing
from tests.support.clinic import make_clinic


async def test_a_token_is_printed_once_listed_without_its_secret_and_revoked(billing: Billing, db: Engine) -> None:
    clinic = make_clinic(db)
    made = await billing("token", "create", "--name", "desk-main", "--scope", "front_desk", "--location", clinic.location_id)
    assert made.exit_code == 0, made
    token = made.stdout.strip()
    assert token.startswith("vbt_") and "shown only this once" in made.stderr
    caller = authenticate(db, token)
    assert caller is not None and (caller.token, caller.scope, caller.reach) == ("desk-main", "front_desk", frozenset({clinic.location_id}))

    listed = await billing("token", "list", "--json")
    assert [(t["name"], t["scope"], t["locations"], t["revoked_at"]) for t in listed.json()] == [("desk-main", "front_desk", [clinic.location_id], None)]
    secret = token.split("_", 2)[2]
    assert secret not in listed.stdout and secret not in (await billing("token", "list")).stdout

    assert (await billing("token", "revoke", "desk-main")).exit_code == 0
    assert authenticate(db, token) is None
    assert "already revoked" in (await billing("token", "revoke", "desk-main")).stdout


async def test_bad_token_input_is_one_line_exit_2_and_changes_nothing(billing: Billing, db: Engine) -> None:
    clinic = make_clinic(db)
    cases = [
        (("--name", "x", "--scope", "admin", "--all-locations"), "scope"),
        (("--name", "x", "--scope", "finance", "--location", "loc_nope"), "unknown location loc_nope"),
        (("--name", "x", "--scope", "finance"), "--all-locations"),
        (("--name", "x", "--scope", "finance", "--all-locations", "--location", clinic.location_id), "--all-locations"),
        (("--name", "bad name!", "--scope", "finance", "--all-locations"), "name"),
        (("--name", "settings-token", "--scope", "billing", "--all-locations"), "BILLING_API_TOKEN"),
    ]
    for args, words in cases:
        run = await billing("token", "create", *args)
        assert run.exit_code == 2, (args, run)
        assert words in run.stderr and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, (args, run.stderr)
    assert (await billing("token", "create", "--name", "fin", "--scope", "finance", "--all-locations")).exit_code == 0
    again = await billing("token", "create", "--name", "fin", "--scope", "finance", "--all-locations")
    assert again.exit_code == 2 and "already exists" in again.stderr
    unknown = await billing("token", "revoke", "nobody")
    assert unknown.exit_code == 2 and "unknown token nobody" in unknown.stderr
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_token")).scalar() == 1


async def test_an_operator_command_records_the_cli_user_as_actor(billing: Billing, db: Engine) -> None:
    clinic = make_clinic(db)
    invoice = (await billing("counter-invoice", clinic.client_id, "--line", "Exam=85.00", "--json")).json()
    trail = audit_trail(db, "invoice", invoice["invoice_id"], None)
    assert [(e.action, e.token, e.staff, e.location_id) for e in trail] == [("invoice.create", f"cli:{getpass.getuser()}", None, clinic.location_id)]
