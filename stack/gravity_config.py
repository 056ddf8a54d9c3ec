"""Which Gravity the engine talks to: the configured emergepay URL and tokens, or the local sandbox.

With no `BILLING_GRAVITY_BASE_URL` the engine uses the sandbox on `sandbox_host:sandbox_port` with
its well-known demo credential; with one, every token must come from the settings.
"""

from __future__ import annotations

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.directory import GatewayDirectory
from gravity.sandbox.app import BASE_PATH
from gravity.sandbox.listing import SandboxListing


def sandbox_base_url(settings: Settings) -> str:
    return f"http://{settings.sandbox_host}:{settings.sandbox_port}{BASE_PATH}"


def uses_sandbox(settings: Settings) -> bool:
    return not settings.gravity_base_url


def gateway_directory(settings: Settings, *, base_url: str | None = None) -> GatewayDirectory:
    """Gravity clients for every OID the settings (or the sandbox) give a token for; on the sandbox,
    its transaction list too (emergepay has none)."""
    tokens = {oid: token.get_secret_value() for oid, token in settings.gravity_tokens.items()}
    default = settings.gravity_token.get_secret_value() if settings.gravity_token else None
    if uses_sandbox(settings):
        tokens.setdefault(SANDBOX_OID, SANDBOX_TOKEN)
        url = base_url or sandbox_base_url(settings)
        return GatewayDirectory(
            url,
            tokens,
            default_token=default,
            timeout=settings.gravity_timeout_s,
            listing=SandboxListing(url),
            tell_sandbox_time=settings.gravity_sandbox_clock,
        )
    url = base_url or str(settings.gravity_base_url)
    return GatewayDirectory(url, tokens, default_token=default, timeout=settings.gravity_timeout_s)
