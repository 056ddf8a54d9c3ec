"""Time each list, search, timeline, report and export call of the API over a seeded group.

Every route of `PROBES` the app has is called `requests` times over HTTP with filters drawn from the
seeded rows (after two warm-up calls), and a list's second page is reached through the first page's
`next_cursor`; a route the app lacks is reported missing. For the three slowest calls the SQL of one
request is captured (a SQLAlchemy listener on the app's engine) and its slowest statement explained
with EXPLAIN (ANALYZE, BUFFERS), which is what an index decision needs.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from io import StringIO
from typing import Any

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event, text

Request = tuple[str, dict[str, str]]
PAGE_MS, TIMELINE_MS, REPORT_MS = 100, 200, 2_000
WARM_UP = 2
LIMIT = "50"
STATUSES = ("active", "past_due", "suspended", "paused", "cancelled", "ended")


@dataclass(frozen=True)
class Sample:
    """Seeded values the requests draw their filters from."""

    locations: list[str]
    clients: list[str]
    pets: list[str]
    subscriptions: list[str]
    plans: list[str]
    names: list[str]
    periods: list[str]
    days: list[str]
    last_event: int


def sample_of(engine: Engine, size: int = 200) -> Sample:
    """Random seeded ids, client name words, and the months and days the books span."""
    with engine.connect() as conn:

        def column(query: str) -> list[Any]:
            return [row[0] for row in conn.execute(text(query), {"size": size})]

        first, last = conn.execute(text("SELECT min(due_at)::date, max(due_at)::date FROM invoice")).one()
        first, last = first or date.today(), last or date.today()
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        return Sample(
            locations=column("SELECT id FROM location ORDER BY id"),
            clients=column("SELECT client_id FROM subscription ORDER BY random() LIMIT :size"),
            pets=column("SELECT pet_id FROM subscription ORDER BY random() LIMIT :size"),
            subscriptions=column("SELECT id FROM subscription ORDER BY random() LIMIT :size"),
            plans=column("SELECT id FROM health_plan ORDER BY id"),
            names=sorted({word for name in column("SELECT name FROM client ORDER BY random() LIMIT :size") for word in name.split()}),
            periods=sorted({day.strftime("%Y-%m") for day in days}),
            days=[day.isoformat() for day in days],
            last_event=int(conn.execute(text("SELECT COALESCE(max(id), 0) FROM outbox_event")).scalar_one()),
        )


def _filters(rng: random.Random, options: dict[str, Callable[[], str]], *, at_most: int = 2) -> dict[str, str]:
    """Up to `at_most` of the filters, drawn at random (none: the unfiltered first page)."""
    chosen = rng.sample(sorted(options), rng.randint(0, min(at_most, len(options))))
    return {name: options[name]() for name in chosen}


def _due_window(rng: random.Random) -> dict[str, str]:
    """A next-due window of one to four weeks, from today to a month ahead."""
    after = date.today() + timedelta(days=rng.randint(0, 30))
    return {"due_after": after.isoformat(), "due_before": (after + timedelta(days=rng.randint(7, 28))).isoformat()}


def _subscriptions(s: Sample, rng: random.Random) -> Request:
    """Every filter the billing system uses: status, dunning, suspended, incident, due window, plan, client, pet."""
    options: dict[str, Callable[[], str]] = {
        "status": lambda: rng.choice(STATUSES),
        "client_id": lambda: rng.choice(s.clients),
        "pet_id": lambda: rng.choice(s.pets),
        "location_id": lambda: rng.choice(s.locations),
        "plan_id": lambda: rng.choice(s.plans),
        "due_before": lambda: (date.today() + timedelta(days=rng.randint(1, 30))).isoformat(),
        "in_dunning": lambda: "true",
        "suspended": lambda: "true",
        "has_incident": lambda: "true",
    }
    params = _filters(rng, options)
    if "due_before" not in params and rng.random() < 0.2:
        params.update(_due_window(rng))
    return "/subscriptions", {**params, "limit": LIMIT}


def _by_location(path: str, *extra: str) -> Callable[[Sample, random.Random], Request]:
    """A list filtered by location, and maybe by client, status or a search word."""

    def build(s: Sample, rng: random.Random) -> Request:
        options: dict[str, Callable[[], str]] = {"location_id": lambda: rng.choice(s.locations)}
        if "client_id" in extra:
            options["client_id"] = lambda: rng.choice(s.clients)
        if "status" in extra:
            options["status"] = lambda: rng.choice(("open", "paid", "void"))
        if "q" in extra:
            options["q"] = lambda: rng.choice(s.names)
        return path, {**_filters(rng, options), "limit": LIMIT}

    return build


def _period(path: str, **extra: str) -> Callable[[Sample, random.Random], Request]:
    def build(s: Sample, rng: random.Random) -> Request:
        params = {"period": rng.choice(s.periods), **extra}
        if rng.random() < 0.5:
            params["location_id"] = rng.choice(s.locations)
        return path, params

    return build


def _journal(fmt: str) -> Callable[[Sample, random.Random], Request]:
    def build(s: Sample, rng: random.Random) -> Request:
        return "/finance/journal", {"date": rng.choice(s.days), "location_id": rng.choice(s.locations), "format": fmt}

    return build


def _reconciliation(s: Sample, rng: random.Random) -> Request:
    """One location's day: every movement is looked up at the gateway (the Gravity sandbox here)."""
    return "/finance/reconciliation", {"date": rng.choice(s.days[-30:]), "location_id": rng.choice(s.locations)}


def _audit(subject: str) -> Callable[[Sample, random.Random], Request]:
    def build(s: Sample, rng: random.Random) -> Request:
        ids = s.subscriptions if subject == "subscriptions" else s.clients
        return f"/finance/audit/{subject}/{rng.choice(ids)}", {}

    return build


def _timeline(s: Sample, rng: random.Random) -> Request:
    return f"/subscriptions/{rng.choice(s.subscriptions)}/timeline", {}


def _subscription(s: Sample, rng: random.Random) -> Request:
    return f"/subscriptions/{rng.choice(s.subscriptions)}", {}


def _client_invoices(s: Sample, rng: random.Random) -> Request:
    return f"/clients/{rng.choice(s.clients)}/invoices", {}


def _events(s: Sample, rng: random.Random) -> Request:
    return "/events", {"after": str(rng.randint(0, max(s.last_event - 100, 0))), "limit": "100"}


@dataclass(frozen=True)
class Probe:
    """One route: its path template ("{}" for a path parameter), its goal, how to make a request."""

    route: str
    template: str
    goal_ms: int
    build: Callable[[Sample, random.Random], Request]
    paged: bool = False


PROBES = (
    Probe("GET /subscriptions", "/subscriptions", PAGE_MS, _subscriptions, paged=True),
    Probe("GET /plans", "/plans", PAGE_MS, _by_location("/plans"), paged=True),
    Probe("GET /clients", "/clients", PAGE_MS, _by_location("/clients", "q"), paged=True),
    Probe("GET /invoices", "/invoices", PAGE_MS, _by_location("/invoices", "client_id", "status"), paged=True),
    Probe("GET /payments", "/payments", PAGE_MS, _by_location("/payments", "client_id"), paged=True),
    Probe("GET /refunds", "/refunds", PAGE_MS, _by_location("/refunds"), paged=True),
    Probe("GET /deposits", "/deposits", PAGE_MS, _by_location("/deposits"), paged=True),
    Probe("GET /subscriptions/{id}/timeline", "/subscriptions/{}/timeline", TIMELINE_MS, _timeline),
    Probe("GET /finance/report", "/finance/report", REPORT_MS, _period("/finance/report")),
    Probe("GET /finance/report csv", "/finance/report", REPORT_MS, _period("/finance/report", format="csv")),
    Probe("GET /finance/journal", "/finance/journal", REPORT_MS, _journal("json")),
    Probe("GET /finance/journal csv", "/finance/journal", REPORT_MS, _journal("csv")),
    Probe("GET /finance/ledger/balances", "/finance/ledger/balances", REPORT_MS, _period("/finance/ledger/balances")),
    Probe("GET /finance/audit/subscriptions/{id}", "/finance/audit/subscriptions/{}", TIMELINE_MS, _audit("subscriptions")),
    Probe("GET /finance/audit/clients/{id}", "/finance/audit/clients/{}", TIMELINE_MS, _audit("clients")),
    Probe("GET /finance/reconciliation", "/finance/reconciliation", REPORT_MS, _reconciliation),
    Probe("GET /subscriptions/{id}", "/subscriptions/{}", PAGE_MS, _subscription),
    Probe("GET /clients/{id}/invoices", "/clients/{}/invoices", PAGE_MS, _client_invoices),
    Probe("GET /events", "/events", PAGE_MS, _events),
)


def served_routes(app: FastAPI) -> set[str]:
    """The app's GET path templates as its OpenAPI schema states them, each path parameter written "{}"."""
    return {re.sub(r"\{[^}]*\}", "{}", path) for path, operations in app.openapi()["paths"].items() if "get" in operations}


@dataclass
class Timing:
    """The calls of one row of the table."""

    route: str
    page: str
    goal_ms: int
    calls: list[tuple[Request, float, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ms = sorted(call[1] for call in self.calls)

        def rank(p: float) -> float:
            return round(ms[max(math.ceil(p * len(ms)) - 1, 0)], 1) if ms else 0.0

        statuses = Counter(str(call[2]) for call in self.calls)
        return {
            "route": self.route,
            "page": self.page,
            "n": len(ms),
            "p50_ms": rank(0.5),
            "p95_ms": rank(0.95),
            "max_ms": round(ms[-1], 1) if ms else 0.0,
            "goal_ms": self.goal_ms,
            "meets_goal": bool(ms) and rank(0.95) <= self.goal_ms,
            "statuses": dict(sorted(statuses.items())),
        }


def _call(client: httpx.Client, request: Request) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(request[0], params=request[1])
    return (time.perf_counter() - started) * 1000, response


def time_probe(client: httpx.Client, probe: Probe, sample: Sample, rng: random.Random, n: int) -> list[Timing]:
    """`n` calls of one route (and, for a list, `n` second pages reached by `next_cursor`)."""
    for _ in range(WARM_UP):
        _call(client, probe.build(sample, rng))
    first = Timing(probe.route, "first" if probe.paged else "", probe.goal_ms)
    cursors: list[Request] = []
    for _ in range(n):
        request = probe.build(sample, rng)
        ms, response = _call(client, request)
        first.calls.append((request, ms, response.status_code))
        if probe.paged and response.status_code == 200:
            cursor = response.json().get("next_cursor")
            if cursor:
                cursors.append((request[0], {**request[1], "cursor": str(cursor)}))
    if not probe.paged:
        return [first]
    second = Timing(probe.route, "next", probe.goal_ms)
    for request in cursors:
        ms, response = _call(client, request)
        second.calls.append((request, ms, response.status_code))
    return [first, second]


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[float, str, Any]]]:
    """The statements the engine runs meanwhile, with their milliseconds and parameters."""
    statements: list[tuple[float, str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started = conn.info["bench_started"].pop()
        if not executemany:
            statements.append(((time.perf_counter() - started) * 1000, statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain_slowest(client: httpx.Client, engine: Engine, timing: Timing) -> dict[str, Any]:
    """Repeat the slowest call of a row with its SQL captured; EXPLAIN (ANALYZE, BUFFERS) its slowest query."""
    request = max(timing.calls, key=lambda call: call[1])[0]
    with captured_sql(engine) as statements:
        ms, _ = _call(client, request)
    found: dict[str, Any] = {"route": timing.route, "page": timing.page, "path": request[0], "params": request[1], "ms": round(ms, 1)}
    found["statements"] = len(statements)
    found["sql_total_ms"] = round(sum(entry[0] for entry in statements), 1)  # the rest of the call is Python and HTTP
    queries = [entry for entry in statements if entry[1].lstrip().upper().startswith(("SELECT", "WITH"))]
    if not queries:
        return {**found, "sql": None, "plan": None}
    sql_ms, statement, parameters = max(queries, key=lambda entry: entry[0])
    with engine.connect() as conn:
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or None)]
        conn.rollback()
    return {**found, "sql_ms": round(sql_ms, 1), "sql": statement, "plan": "\n".join(plan)}


def time_routes(app: FastAPI, base_url: str, token: str, engine: Engine, *, requests: int, seed: int = 7, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Time every probe the app serves; returns the rows, the missing routes and the slowest plans."""
    served = served_routes(app)
    sample = sample_of(engine)
    rng = random.Random(seed)
    timings: list[Timing] = []
    missing = [probe.route for probe in PROBES if probe.template not in served]
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0) as client:
        for probe in PROBES:
            if probe.template in served:
                say(f"timing {probe.route}")
                timings.extend(time_probe(client, probe, sample, rng, requests))
        rows = [timing.summary() for timing in timings]
        slowest = sorted((t for t in timings if t.calls), key=lambda t: t.summary()["p95_ms"], reverse=True)[:3]
        plans = [explain_slowest(client, engine, timing) for timing in slowest]
    return {"routes": rows, "missing": missing, "slowest": plans}


def format_report(report: dict[str, Any]) -> str:
    """The seed's size and time, the timing table against the goals, and the slowest calls' plans."""
    out = StringIO()
    console = Console(file=out, width=150, no_color=True, highlight=False)
    seed, books = report["seed"], report["books"]
    console.print(f"seeded {seed['subscriptions']:,} subscriptions, {seed['total_rows']:,} rows in {seed['seconds']} s (COPY {seed['copy_s']} s)")
    console.print(", ".join(f"{table} {count:,}" for table, count in seed["rows"].items()))
    console.print(f"ledger: debits {books['debits_cents']:,} = credits {books['credits_cents']:,} cents: {'balanced' if books['balanced'] else 'NOT BALANCED'}")
    table = Table(title=f"API calls over the seeded group ({report['requests']} requests each, after {WARM_UP} warm-up)")
    for name, justify in (("route", "left"), ("page", "left"), ("n", "right"), ("p50 ms", "right"), ("p95 ms", "right"), ("max ms", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("goal p95", justify="right")
    table.add_column("", justify="left")
    table.add_column("statuses", justify="left")
    for row in report["routes"]:
        verdict = "ok" if row["meets_goal"] else "SLOW"
        statuses = " ".join(f"{code}x{count}" for code, count in row["statuses"].items())
        cells = (row["route"], row["page"], str(row["n"]), f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['max_ms']:.1f}")
        table.add_row(*cells, f"< {row['goal_ms']}", verdict, statuses)
    for route in report["missing"]:
        table.add_row(route, "", "", "", "", "", "", "missing", "")
    console.print(table)
    for found in report["slowest"]:
        call = f"{found['route']} {found['page']} {found['path']} {found['params']}"
        console.print(f"\nslow: {call} ({found['ms']} ms, {found['statements']} statements taking {found['sql_total_ms']} ms)", markup=False)
        if found["sql"]:
            console.print(f"slowest statement ({found['sql_ms']} ms):\n{found['sql']}\n{found['plan']}", markup=False)
    return out.getvalue().rstrip()
