"""Every setting of the engine, read once from the environment.

The prefix is `BILLING_` (for example `BILLING_API_TOKEN`). Two settings also answer to the names
the rest of the ecosystem uses: `DATABASE_URL` and `TEMPORAL_ADDRESS`. When either is unset the
engine starts an embedded PostgreSQL or Temporal dev server in `data_dir` (see `stack/`).

Secrets are `SecretStr`: printing the settings shows `**********`, never the value.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "BILLING_"
SANDBOX_OID = "1000000001"
SANDBOX_TOKEN = "sandbox-token"  # the loopback sandbox's well-known demo token, not a secret
DEV_API_TOKEN = "dev-api-token"  # used only when the embedded stack runs without one
DEV_POSTBACK_SECRET = "dev-postback-secret"  # same


class Settings(BaseSettings):
    """The engine's configuration. Construct with `get_settings()`; tests may build their own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False)

    data_dir: Path = Field(default=Path(".billing"), description="Folder for embedded PostgreSQL, Temporal and sandbox state.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BILLING_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL (postgresql://...). Unset: embedded PostgreSQL in data_dir.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)

    temporal_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BILLING_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS"),
        description="host:port of a Temporal frontend. Unset: embedded dev server.",
    )
    temporal_namespace: str = "default"
    temporal_task_queue: str = "billing"
    temporal_port: int = Field(default=7233, ge=1, le=65535, description="Embedded dev server gRPC port.")
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535, description="Embedded dev server Web UI port.")

    gravity_base_url: str | None = Field(
        default=None,
        description="emergepay base URL ending in /virtualterminal/v1. Unset: the local sandbox.",
    )
    gravity_token: SecretStr | None = Field(default=None, description="Partner or merchant bearer token used for every OID without its own.")
    gravity_tokens: dict[str, SecretStr] = Field(default_factory=dict, description='Per-OID tokens as JSON: {"OID": "token"}.')
    gravity_timeout_s: float = Field(default=15.0, gt=0, le=120)
    gravity_sandbox_clock: bool = Field(
        default=False,
        description="Send the workflow's time to the local sandbox, which dates its transactions by it (the demo's simulated year). Sandbox only.",
    )
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8790, ge=0, le=65535)

    postback_secret: SecretStr | None = Field(default=None, description="Shared HMAC secret for Gravity postbacks.")
    api_token: SecretStr | None = Field(default=None, description="Bearer credential the HTTP API requires.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8780, ge=0, le=65535)
    api_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="The largest request body the HTTP API reads; a larger one is refused with 413 before it is read whole.",
    )
    money_wait_s: float = Field(
        default=5.0, ge=0, le=60, description="How long a money POST waits for its workflow's result before answering 202 with a URL to poll."
    )
    idempotency_lease_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long an unanswered Idempotency-Key claim blocks the same key; after that a retry takes it over (its request died).",
    )

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    events_url: str | None = Field(default=None, description="Where outbox events are POSTed, signed (none: feed only).")
    events_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key for X-Billing-Signature on event deliveries.")

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("must be a PostgreSQL URL starting with postgresql://")
        return value

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, for example temporal.internal:7233")
        return value

    def token_for(self, oid: str) -> SecretStr | None:
        """The bearer token for a merchant OID: its own, else the partner token."""
        return self.gravity_tokens.get(oid) or self.gravity_token


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()


def describe_settings_error(error: Exception) -> str:
    """One line naming the environment variable that is wrong and why, for the CLI to print."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors():
        field = str(item["loc"][0]) if item.get("loc") else "?"
        name = field if field.isupper() else f"{ENV_PREFIX}{field.upper()}"
        parts.append(f"{name}: {item['msg']}")
    return "bad setting: " + "; ".join(parts)
