"""`billing migrate` on the embedded database, and the search-attribute table workflows import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stack_testing import ROOT, processes_of, run_billing

from stack.search_attributes import ALL_KEYS, CLI_VALUES


def test_migrate_embedded_prints_the_revision_and_stops_postgres(data_dir: Path, stack_env: dict[str, str]) -> None:
    from alembic.script import ScriptDirectory

    from models.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    result = run_billing("migrate", env=stack_env)
    assert result.returncode == 0, result.stderr
    assert f"is at revision {head}" in result.stdout
    assert f"host={data_dir}/postgres" in result.stdout
    assert processes_of(data_dir) == []
    # A second migrate reuses the same data folder and is a no-op.
    again = run_billing("migrate", env=stack_env)
    assert again.returncode == 0, again.stderr
    assert f"is at revision {head}" in again.stdout


def test_search_attributes_cover_the_engine_and_match_the_cli_flags() -> None:
    names = [key.name for key in ALL_KEYS]
    assert names == ["ClientId", "LocationId", "PlanId", "SubscriptionStatus", "NextDueAt", "InvoiceId", "PaymentStatus"]
    assert "NextDueAt=Datetime" in CLI_VALUES
    assert "ClientId=Keyword" in CLI_VALUES
    assert len(CLI_VALUES) == len(ALL_KEYS)


def test_search_attributes_module_stays_light_for_workflows() -> None:
    code = (
        "import sys, stack.search_attributes\n"
        "heavy = [m for m in ('psutil', 'sqlalchemy', 'sqlmodel', 'psycopg', 'stack.processes', 'stack.embedded', "
        "'foundation.settings') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
