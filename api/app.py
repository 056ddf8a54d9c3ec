"""The HTTP API the clinic's billing system (and Gravity's postbacks) reach the engine through.

`create_app` builds it over an engine, a Temporal client and the settings, so the CLI serves it
against the configured stack and the tests against their own real servers. Every route but
`GET /health` requires `Authorization: Bearer <token>` (BILLING_API_TOKEN, or a scoped token made with
`billing token create`: see `foundation.scopes`); every POST honours an
`Idempotency-Key` (and every POST that can move money requires one); every refusal is a 4xx in one
shape naming the field (see `api.errors`), every field is checked at the edge (`api.fields`), and a
body above BILLING_API_MAX_BODY_BYTES is refused with 413 before it is read whole. When
`events_url` is configured the app also runs the signed outbox delivery loop for as long as it
serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from temporalio.client import Client

from api.body_limit import BodySizeLimit
from api.deps import Runtime, authenticate, current_caller
from api.errors import install_error_handlers
from api.idempotency import IdempotencyMiddleware
from api.openapi import install_schema
from api.routes import cards, clients, events, finance, health, invoices, lists, locations, payments, pets, plans, subscriptions
from foundation.settings import SANDBOX_TOKEN, Settings
from foundation.telemetry import Telemetry, setup_telemetry
from gravity.directory import GatewayDirectory
from gravity.sandbox.listing import SandboxListing
from operations.events import DeliveryLoop

PROTECTED = (locations, clients, pets, cards, plans, subscriptions, invoices, events, lists, finance)
# Swagger UI's and ReDoc's files as the fastapi-offline package ships them: /docs must work offline.
DOCS_FILES = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"


def gateways_for(settings: Settings) -> GatewayDirectory:
    """Gravity clients as the settings say: the real emergepay URL and tokens, or the local sandbox."""
    tokens = {oid: token.get_secret_value() for oid, token in settings.gravity_tokens.items()}
    if settings.gravity_base_url:
        default = settings.gravity_token.get_secret_value() if settings.gravity_token else None
        return GatewayDirectory(settings.gravity_base_url, tokens, default_token=default, timeout=settings.gravity_timeout_s)
    sandbox = f"http://{settings.sandbox_host}:{settings.sandbox_port}/virtualterminal/v1"
    default = settings.gravity_token.get_secret_value() if settings.gravity_token else SANDBOX_TOKEN
    return GatewayDirectory(sandbox, tokens, default_token=default, timeout=settings.gravity_timeout_s, listing=SandboxListing(sandbox))


def create_app(
    engine: Engine,
    temporal_client: Client,
    settings: Settings,
    *,
    task_queue: str,
    gateways: GatewayDirectory | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The API app. Refuses to build without an API token: the API is never open by accident.

    `gateways` (Gravity clients for refunds, deposits and terminals) defaults to what the settings
    configure; its clients are created lazily on the serving event loop and closed at shutdown.
    `telemetry` defaults to what the settings switch on (nothing, by default); when on, every
    request gets a server span and workflows are started through a tracing Temporal client, so
    one trace runs from the request to the Gravity call."""
    if settings.api_token is None or not settings.api_token.get_secret_value():
        raise ValueError("BILLING_API_TOKEN must be set: the HTTP API requires a bearer credential")
    if settings.events_url and settings.events_secret is None:
        raise ValueError("BILLING_EVENTS_SECRET must be set when BILLING_EVENTS_URL is: deliveries are signed")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = None
        if settings.events_url and settings.events_secret is not None:
            loop = DeliveryLoop(engine, settings.events_url, settings.events_secret.get_secret_value()).start()
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()
            await directory.aclose()

    app = FastAPI(
        title="Vet billing API",
        version="1.0.0",
        description="Health-plan subscriptions, invoices and events for the clinic's billing system. "
        'Money is integer cents (USD). Every integer is a JSON integer: 5000, never "5000", true or 5000.0 (refused on purpose, '
        "although JSON Schema counts 5000.0 an integer). Text refuses NUL, control and bidirectional-override characters. "
        "Errors: {error, message, fields: [{field, reason}]}; every refusal names at least one field.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    serve_docs_locally(app)
    telemetry = telemetry or setup_telemetry(settings, service_name="vet-billing-api")
    temporal_client = telemetry.traced_client(temporal_client)
    directory = gateways if gateways is not None else gateways_for(settings)
    app.state.runtime = Runtime(engine=engine, temporal=temporal_client, settings=settings, task_queue=task_queue, gateways=directory)
    app.state.api_token = settings.api_token.get_secret_value()
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(payments.postbacks)  # verified by HMAC, not by the bearer credential
    app.include_router(payments.router)  # carries its own bearer dependency
    for module in PROTECTED:
        app.include_router(module.router, dependencies=[Depends(current_caller)])
    app.add_middleware(IdempotencyMiddleware, engine=engine, authenticate=lambda presented: authenticate(app, presented), lease_s=settings.idempotency_lease_s)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)  # outside the idempotency middleware, which reads bodies
    install_schema(app, max_body_bytes=settings.api_max_body_bytes)
    telemetry.instrument_app(app)
    return app


def serve_docs_locally(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc` from local files, FastAPI's self-hosting recipe: the default pages load them from a CDN."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_FILES), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
