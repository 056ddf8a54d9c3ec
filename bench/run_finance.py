"""`billing bench --finance`: seed a clinic group's books at scale, then time the API over them.

A database of its own (`billing_bench_finance`, migrated, dropped at the end) on the stack's
PostgreSQL server gets the group (`bench.finance_seed`); the API app then serves it under uvicorn on
a free loopback port with the settings' token (a random one when none is set), and every list,
search, timeline, audit, report, reconciliation and export call is timed through HTTP
(`bench.finance_timing`). Temporal is only there because the app needs a client (`GET
/subscriptions/{id}` and the audit trail ask the workflows, and find none: the seeded subscriptions
have no workflows). The Gravity sandbox answers reconciliation's lookups for the seeded merchants;
it never saw the seeded transactions, so it times one lookup per movement, not the books.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client

from foundation.settings import Settings

FINANCE_DATABASE = "billing_bench_finance"
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # it is dropped and created by name
DATABASE_ENV = "BILLING_BENCH_FINANCE_DATABASE"  # another name, so two benches on one server never collide
FINANCE_TEMPORAL_STORE = "temporal-bench-finance.sqlite"  # not the billing bench's: both may run at once


def finance_on(
    server_url: str,
    temporal: Client,
    settings: Settings,
    subscriptions: int,
    *,
    requests: int = 50,
    database: str = FINANCE_DATABASE,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Seed, serve and time on an already running PostgreSQL server; drops its database after."""
    from api.app import create_app
    from bench.database import drop_database, fresh_database
    from bench.finance_seed import books_balance, seed
    from bench.finance_timing import time_routes
    from foundation.settings import SANDBOX_TOKEN
    from gravity.directory import GatewayDirectory
    from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
    from models.db import get_engine

    token = settings.api_token.get_secret_value() if settings.api_token else secrets.token_urlsafe(32)
    settings = settings.model_copy(update={"api_token": SecretStr(token), "events_url": None})
    url = fresh_database(server_url, database)
    try:
        say(f"seeding {subscriptions:,} subscriptions into {database}")
        seeded = seed(url, subscriptions, say=say)
        books = books_balance(url)
        engine = get_engine(url)
        with engine.connect() as conn:
            oids = [row[0] for row in conn.exec_driver_sql("SELECT gravity_oid FROM location")]
        sandbox = SandboxServer(oids=dict.fromkeys(oids, SANDBOX_TOKEN)).start()
        gateways = GatewayDirectory(sandbox.base_url, {}, default_token=SANDBOX_TOKEN)
        app = create_app(engine, temporal, settings, task_queue=settings.temporal_task_queue, gateways=gateways)
        server = ThreadedUvicorn(app).start()
        try:
            timing = time_routes(app, server.url, token, engine, requests=requests, say=say)
        finally:
            server.stop()
            sandbox.stop()
            engine.dispose()
    finally:
        drop_database(server_url, database)
    return {"seed": seeded, "books": books, "requests": requests, **timing}


def database_name(name: str | None = None) -> str:
    """The bench's database: `name`, else $BILLING_BENCH_FINANCE_DATABASE, else `billing_bench_finance`."""
    chosen = name or os.environ.get(DATABASE_ENV) or FINANCE_DATABASE
    if not DATABASE_NAME.fullmatch(chosen):
        raise ValueError(f"--database must be lowercase letters, digits and _ (at most 63), not {chosen!r}")
    return chosen


def run(subscriptions: int, *, requests: int = 50, quiet: bool = False, database: str | None = None) -> dict[str, Any]:
    """Start the embedded stack (or use the configured servers), seed, time, stop."""
    from bench.run_bench import bench_stack
    from stack.embedded import load_settings
    from worker import connect

    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    settings = load_settings()

    async def go(database_url: str, temporal_address: str, namespace: str) -> dict[str, Any]:
        client = await connect(temporal_address, namespace)
        # The timing is blocking HTTP against a server thread; this loop stays free for the client.
        return await asyncio.to_thread(finance_on, database_url, client, settings, subscriptions, requests=requests, database=name, say=say)

    name = database_name(database)
    store = FINANCE_TEMPORAL_STORE if name == FINANCE_DATABASE else f"temporal-{name}.sqlite"
    with bench_stack(store) as addresses:
        return asyncio.run(go(addresses.database_url, addresses.temporal_address or "", addresses.temporal_namespace))
