"""Idempotency keys on POSTs: replay, a different body, a refused first try, bad keys, no credential,
and a claim left by a request that died."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, text

from foundation.settings import SANDBOX_OID
from models.clinic import Client
from models.idempotency import ApiIdempotency
from tests.api.helpers import count, ok, refused


async def test_replay_conflict_and_refusals(api: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Engine) -> None:
    location = ok(await api.post("/locations", json={"name": "L", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID}), 201)
    key = {"Idempotency-Key": "new-client-7"}
    body = {"location_id": location["id"], "name": "Dana"}

    first = await api.post("/clients", json=body, headers=key)
    assert first.status_code == 201
    # Same key, same content (other spacing and key order): the stored answer, not a second client.
    replay = await api.post(
        "/clients", content=b'{ "name" : "Dana",  "location_id": "' + location["id"].encode() + b'" }', headers={**key, "Content-Type": "application/json"}
    )
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert count(db, Client) == 1

    refused(await api.post("/clients", json={**body, "name": "Someone else"}, headers=key), 409, "Idempotency-Key")
    refused(await api.post(f"/clients/{first.json()['id']}/pets", json={"name": "Rex"}, headers=key), 409, "Idempotency-Key")
    assert count(db, Client) == 1

    # A refused first try stores nothing: the same key works once the request is fixed.
    retry_key = {"Idempotency-Key": "new-client-8"}
    refused(await api.post("/clients", json={"location_id": "nope", "name": "Lee"}, headers=retry_key), 422, "location_id")
    refused(await api.post("/clients", json={"location_id": location["id"]}, headers=retry_key), 422, "name")
    assert count(db, ApiIdempotency) == 1
    ok(await api.post("/clients", json={"location_id": location["id"], "name": "Lee"}, headers=retry_key), 201)
    assert count(db, Client) == 2

    refused(await api.post("/clients", json=body, headers={"Idempotency-Key": "k" * 201}), 422, "Idempotency-Key")
    assert count(db, Client) == 2

    # Without the credential a key is never looked at: 401, nothing stored, nothing replayed.
    anon = await anonymous.post("/clients", json=body, headers=key)
    assert anon.status_code == 401 and "idempotent-replayed" not in anon.headers
    anon = await anonymous.post("/clients", json=body, headers={"Idempotency-Key": "anon-1"})
    assert anon.status_code == 401
    assert count(db, ApiIdempotency) == 2


async def test_a_claim_whose_request_died_is_taken_over_by_the_same_request_after_its_lease(api: httpx.AsyncClient, db: Engine) -> None:
    location = ok(await api.post("/locations", json={"name": "L", "timezone": "America/Chicago", "gravity_oid": SANDBOX_OID}), 201)
    body = {"location_id": location["id"], "name": "Dana"}
    # What a request that died between claiming its key and answering leaves behind: a claim, no answer.
    abandoned = await api.post("/clients", json=body, headers={"Idempotency-Key": "probe"})
    assert abandoned.status_code == 201
    with db.begin() as connection:
        connection.execute(
            text("UPDATE api_idempotency SET key = 'settings-token:died-mid-request', status_code = NULL, response_body = NULL, completed_at = NULL")
        )

    # Within the lease the first request may still be running: 409, and nothing runs twice.
    busy = refused(await api.post("/clients", json=body, headers={"Idempotency-Key": "died-mid-request"}), 409, "Idempotency-Key")
    assert "still being processed" in busy["message"]
    assert count(db, Client) == 1

    with db.begin() as connection:
        connection.execute(text("UPDATE api_idempotency SET created_at = created_at - interval '1 hour' WHERE key = 'settings-token:died-mid-request'"))
    # After it another body is still refused, and the same request takes the key over, answers and keeps its answer.
    refused(await api.post("/clients", json={**body, "name": "Lee"}, headers={"Idempotency-Key": "died-mid-request"}), 409, "Idempotency-Key")
    taken_over = await api.post("/clients", json=body, headers={"Idempotency-Key": "died-mid-request"})
    assert taken_over.status_code == 201 and "idempotent-replayed" not in taken_over.headers
    replay = await api.post("/clients", json=body, headers={"Idempotency-Key": "died-mid-request"})
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true" and replay.json() == taken_over.json()
