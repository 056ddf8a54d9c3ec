"""The lists over HTTP on the real database: keyset pages that walk every row exactly once though
rows tie on their sort key, each filter, and the 422 that names a bad parameter."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.api.helpers import ok, refused
from tests.api.list_books import Books, seed_books


async def walk(api: httpx.AsyncClient, path: str, *, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = ok(await api.get(path, params=query))
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


async def ids(api: httpx.AsyncClient, path: str, **params: Any) -> set[str]:
    return {item["id"] for item in await walk(api, path, limit=200, **params)}


@pytest.fixture
async def books(api: httpx.AsyncClient, db: Engine) -> Books:
    return seed_books(db)


def newest_first(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["created_at"], item["id"]) for item in items]


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_every_list_walks_every_row_once_in_a_stable_order(api: httpx.AsyncClient, books: Books, limit: int) -> None:
    for path, expected in (
        ("/subscriptions", books.subscriptions),
        ("/plans", books.plans),
        ("/invoices", books.invoices),
        ("/payments", books.payments),
        ("/refunds", books.refunds),
        ("/deposits", books.deposits),
    ):
        items = await walk(api, path, limit=limit)
        keys = [item["id"] for item in items]
        assert sorted(keys) == sorted(expected.values()), path  # each row once
        if path != "/plans":
            order = newest_first(items)
            assert order == sorted(order, key=lambda k: (datetime.fromisoformat(k[0]), k[1]), reverse=True), path
    clients = await walk(api, "/clients", limit=limit)
    assert sorted(c["id"] for c in clients) == sorted(books.clients.values())
    by_name = [(c["name"], c["id"]) for c in clients]
    assert by_name == sorted(by_name)  # the two Dana Whitfields split by id


async def test_a_page_ends_with_no_cursor_and_the_default_size_is_fifty(api: httpx.AsyncClient, books: Books) -> None:
    page = ok(await api.get("/subscriptions"))
    assert page["next_cursor"] is None and len(page["items"]) == len(books.subscriptions)
    first = ok(await api.get("/subscriptions", params={"limit": len(books.subscriptions) - 1}))
    assert first["next_cursor"] is not None


async def test_subscription_filters(api: httpx.AsyncClient, books: Books) -> None:
    s = books.subscriptions
    assert await ids(api, "/subscriptions", status="past_due") == {s["dunned"], s["incident"]}
    assert await ids(api, "/subscriptions", in_dunning="true") == {s["dunned"], s["incident"]}
    assert await ids(api, "/subscriptions", in_dunning="false") == set(s.values()) - {s["dunned"], s["incident"]}
    assert await ids(api, "/subscriptions", suspended="true") == {s["suspended"]}
    assert await ids(api, "/subscriptions", has_incident="true") == {s["incident"]}  # the recovered one's is over
    assert s["recovered"] in await ids(api, "/subscriptions", has_incident="false")
    assert await ids(api, "/subscriptions", client_id=books.clients["ada"]) == {s["active"], s["suspended"]}
    assert await ids(api, "/subscriptions", pet_id=books.pets["grace"]) == {s["recovered"], s["cancelled"]}
    assert await ids(api, "/subscriptions", plan_id=books.plans["senior"]) == {s["suspended"], s["cancelled"]}
    assert await ids(api, "/subscriptions", location_id=books.east) == {s["east"]}
    # Days are the location's: April 2 04:30 UTC is April 1 in Chicago and April 2 in New York.
    assert await ids(api, "/subscriptions", due_after="2026-04-02", due_before="2026-04-03") == {s["dunned"], s["east"]}
    assert await ids(api, "/subscriptions", due_before="2026-04-02") == {s["active"]}
    assert await ids(api, "/subscriptions", status="past_due", has_incident="false") == {s["dunned"]}


async def test_plan_client_and_money_filters(api: httpx.AsyncClient, books: Books) -> None:
    p = books.plans
    assert await ids(api, "/plans", location_id=books.main) == {p["wellness"], p["senior"], p["group"]}  # group-wide too
    assert await ids(api, "/plans", active="false") == {p["senior"]}
    for plan in ok(await api.get("/plans", params={"limit": 2}))["items"]:  # a page's services, read at once, each plan's own
        assert [(s["code"], s["name"]) for s in plan["services"]] == [("EXAM", f"EXAM for {plan['name']}"), ("VACCINE", f"VACCINE for {plan['name']}")]
    c = books.clients
    assert await ids(api, "/clients", q="dana") == {c["dana1"], c["dana2"]}
    assert await ids(api, "/clients", q="NAVY") == {c["grace"]}  # a piece of the email, any case
    assert await ids(api, "/clients", q="love") == {c["ada"]}
    assert await ids(api, "/clients", q="100%_") == set()  # LIKE's wildcards are plain characters
    assert await ids(api, "/clients", location_id=books.east) == {c["alan"]}
    i = books.invoices
    assert await ids(api, "/invoices", status="open") == {i["open"], i["late"]}
    assert await ids(api, "/invoices", client_id=c["ada"]) == {i["open"], i["paid2"], i["late"]}
    # 03:00 UTC on March 1 is still February 28 in Chicago; 04:30 UTC is February 28 in New York.
    assert await ids(api, "/invoices", issued_to="2026-02-28") == set(i.values()) - {i["late"]}
    assert await ids(api, "/invoices", issued_from="2026-03-01") == {i["late"]}
    assert await ids(api, "/invoices", issued_from="2026-02-28", issued_to="2026-02-28", location_id=books.east) == {i["east"]}
    pay = books.payments
    assert await ids(api, "/payments", status="declined") == {pay["declined"]}
    assert await ids(api, "/payments", kind="terminal") == {pay["terminal"], pay["east"]}
    assert await ids(api, "/payments", location_id=books.main, kind="card_on_file") == {pay["card"], pay["declined"]}
    assert await ids(api, "/payments", **{"from": "2026-03-01"}) == set()
    assert await ids(api, "/payments", client_id=c["alan"], to="2026-02-28") == {pay["east"]}
    r = books.refunds
    assert await ids(api, "/refunds", kind="void") == {r["void"]}
    assert await ids(api, "/refunds", status="failed") == {r["failed"]}
    assert await ids(api, "/refunds", location_id=books.east) == {r["east"]}
    assert await ids(api, "/refunds", client_id=c["dana1"]) == {r["void"], r["failed"]}
    d = books.deposits
    assert await ids(api, "/deposits", status="held", location_id=books.main) == {d["held"], d["prorated"]}
    assert await ids(api, "/deposits", source="overpayment") == {d["used"]}
    assert await ids(api, "/deposits", client_id=c["alan"], to="2026-02-27") == {d["east"]}


async def test_bad_parameters_are_refused_naming_them(api: httpx.AsyncClient, books: Books) -> None:
    refused(await api.get("/subscriptions", params={"status": "overdue"}), 422, "status")
    refused(await api.get("/subscriptions", params={"limit": 0}), 422, "limit")
    refused(await api.get("/invoices", params={"limit": 201}), 422, "limit")
    refused(await api.get("/subscriptions", params={"in_dunning": "perhaps"}), 422, "in_dunning")
    refused(await api.get("/subscriptions", params={"cursor": "not-a-cursor"}), 422, "cursor")
    refused(await api.get("/payments", params={"cursor": "a b"}), 422, "cursor")
    other = ok(await api.get("/invoices", params={"limit": 1}))["next_cursor"]
    assert other is not None
    refused(await api.get("/payments", params={"cursor": other}), 422, "cursor")  # another list's cursor
    refused(await api.get("/invoices", params={"issued_from": "2026-02-30"}), 422, "issued_from")
    refused(await api.get("/invoices", params={"issued_from": "2026-03-02", "issued_to": "2026-03-01"}), 422, "issued_to")
    refused(await api.get("/payments", params={"from": "0001-01-01"}), 422, "from")
    refused(await api.get("/deposits", params={"to": "0"}), 422, "to")  # not a timestamp
    refused(await api.get("/subscriptions", params={"due_after": "2026-04-03", "due_before": "2026-04-03"}), 422, "due_before")
    refused(await api.get("/payments", params={"kind": "cash"}), 422, "kind")
    refused(await api.get("/refunds", params={"status": "done", "kind": "chargeback"}), 422, "kind")
    refused(await api.get("/deposits", params={"source": "gift"}), 422, "source")
    refused(await api.get("/clients", params={"q": "   "}), 422, "q")
    refused(await api.get("/clients", params={"location_id": "no spaces"}), 422, "location_id")
    for crafted in ({"l": "clients", "k": ["a", "x\u0000"]}, {"l": "clients", "k": ["a\u0000", "x"]}):  # NUL: a 500 in PostgreSQL
        cursor = base64.urlsafe_b64encode(json.dumps(crafted).encode()).decode().rstrip("=")
        refused(await api.get("/clients", params={"cursor": cursor}), 422, "cursor")


async def test_timeline_answers_the_books_of_one_subscription_oldest_first(api: httpx.AsyncClient, books: Books) -> None:
    sub = books.subscriptions["incident"]
    timeline = ok(await api.get(f"/subscriptions/{sub}/timeline"))
    assert timeline["workflow_id"] == f"subscription:{sub}" and "run ids" in timeline["run_ids_note"]
    items = timeline["items"]
    assert [(i["kind"], i["event_type"]) for i in items] == [("status_change", "payment.retry_scheduled"), ("status_change", "payment.incident")]
    assert all(i["workflow_id"] == f"subscription:{sub}" and i["run_id"] is None for i in items)
    refused(await api.get("/subscriptions/sub_nobody/timeline"), 404, "subscription_id")
