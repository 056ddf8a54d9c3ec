"""What must never reach a log line: a database statement's parameters or the row values PostgreSQL
quotes in an error (names, emails, card references), and any part of a secret given on a command
line (not its first characters, not its length)."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from foundation.telemetry import configure_logging
from models.clinic import Client, Location
from models.db import session_scope

ROOT = Path(__file__).resolve().parents[2]
NAME, EMAIL, CLINIC = "Secret Name 7731", "secret.7731@example.com", "Secret Clinic 7731"


def _insert(engine: Engine, *rows: object) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught, session_scope(engine) as session:
        for row in rows:
            session.add(row)
            session.flush()
    return caught.value


def _logged(error: BaseException) -> str:
    """The error as our logging setup writes it, traceback included."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream=stream)
    try:
        try:
            raise error
        except DBAPIError:
            logging.getLogger("tests.secrets").exception("the insert failed")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return stream.getvalue()


def test_database_errors_carry_no_parameters_and_logs_no_row_values(db: Engine) -> None:
    with session_scope(db) as session:
        session.add(Location(id="loc_secret", name="L", timezone="America/Chicago", gravity_oid="1"))
        session.flush()
        session.add(Client(id="cli_secret", location_id="loc_secret", name="First"))
    duplicate = _insert(db, Client(id="cli_secret", location_id="loc_secret", name=NAME, email=EMAIL))
    assert NAME not in str(duplicate) and EMAIL not in str(duplicate)  # the engine hides statement parameters
    assert "hide_parameters" in str(duplicate) and "client_pkey" in str(duplicate)
    refused_row = _insert(db, Location(id="loc_check", name=CLINIC, timezone="America/Chicago", gravity_oid="1", overpayment_policy="shrug"))
    assert CLINIC in str(refused_row)  # PostgreSQL itself quotes the failing row ...
    for error in (duplicate, refused_row):
        text = _logged(error)
        assert "the insert failed" in text and "Traceback" in text
        for secret in (NAME, EMAIL, CLINIC, "cli_secret"):
            assert secret not in text, (secret, text)  # ... and the log line does not
    assert "ck_location_overpayment_policy" in _logged(refused_row)  # what failed is still said


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_billing_sandbox_prints_nothing_of_its_secrets(tmp_path: Path) -> None:
    secret, token = "Qz7-postback-secret-value", "Jx9-sandbox-token-value"
    port = _free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sandbox", "--port", str(port), "--postback-secret", secret, "--token", token],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:  # serving: the banner has been printed
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, out.read_text()
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    printed = out.read_text()
    lines = {line.split()[0]: line for line in printed.splitlines() if line.strip().startswith("--")}
    assert lines["--postback-secret"].split(None, 1)[1] == "(set, not shown)"
    assert lines["--token"].split(None, 1)[1] == "(set, not shown)"
    for value in (secret, token):
        assert value[:3] not in printed and value[-5:] not in printed
    assert "*" not in printed  # no mask whose length is the secret's
