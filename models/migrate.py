"""Run the Alembic migrations to head, from code (the CLI, the demo and the tests call this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Bring the schema at `url` to the newest revision; a no-op when it is already there."""
    command.upgrade(alembic_config(url), "head")
