"""Idempotency-Key on POST routes: the same request answered once, per tenant, for 24 h.

Against a real server (``POST /api/orders`` is declared ``idempotent=True``)
and against the keys table itself:

* the same key and body replays the first answer (status, headers, body) and
  does nothing again; another body, or another path, is a 422;
* keys belong to their tenant: another tenant's same key is a new request;
* concurrent requests with one key run once; the others see it running (409)
  or replay it;
* an answer of 500 or more releases the key; refusals below 500 are stored;
* keys expire after their TTL and the sweeper deletes them; a claim left by a
  dead process is taken over after the lease.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from tests.http.conftest import Server
from tests.modules.orders.support import ORDERS, place, stocked_product
from triotok.app import schemas_of
from triotok.http import IdempotencyKeys
from triotok.store import Store, open_store


async def _orders(server: Server) -> int:
    count = await server.app.context.store.store.fetchval("SELECT count(*) FROM orders_orders")
    return int(count)


async def test_a_retry_gets_the_first_answer_and_places_nothing_again(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        key = {"Idempotency-Key": "order-2024-0001"}
        first = await place(server, admin, [(mug, 2)], headers=key)
        assert first.status_code == 201, first.text
        assert "Idempotent-Replayed" not in first.headers
        again = await place(server, admin, [(mug, 2)], headers=key)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content
        assert (again.headers["Location"], again.headers["ETag"]) == (
            first.headers["Location"],
            first.headers["ETag"],
        )
        # The same items written another way are the same request...
        same = await server.client.post(
            ORDERS,
            json={"items": [{"quantity": 2, "product_id": mug}]},
            headers={**server.auth(admin), **key, "Prefer": "wait=10"},
        )
        assert same.headers["Idempotent-Replayed"] == "true"
        # ...other items are not.
        other = await place(server, admin, [(mug, 3)], headers=key)
        assert other.status_code == 422
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["code"] == "idempotency_key_reused"
        assert await _orders(server) == 1


async def test_keys_belong_to_their_tenant(server: Server) -> None:
    alpha = await server.key("alpha", "admin")
    beta = await server.key("beta", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, alpha, 10)
        theirs = await stocked_product(server, beta, 10)
        key = {"Idempotency-Key": "shared-key"}
        a = await place(server, alpha, [(mug, 1)], headers=key)
        b = await place(server, beta, [(theirs, 1)], headers=key)
        assert (a.status_code, b.status_code) == (201, 201)
        assert "Idempotent-Replayed" not in b.headers
        assert a.json()["id"] != b.json()["id"]
        assert await _orders(server) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "with space"])
async def test_a_malformed_key_is_a_400_and_places_nothing(server: Server, key: str) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(30):
        response = await server.client.post(
            ORDERS,
            json={"items": [{"product_id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", "quantity": 1}]},
            headers={**server.auth(admin), "Idempotency-Key": key},
        )
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert await _orders(server) == 0


async def test_a_refusal_is_stored_and_replayed_too(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        order = (await place(server, admin, [(mug, 1)])).json()
        url = f"{ORDERS}/{order['id']}/pay"
        stale = await server.client.post(
            url, headers={**auth, "If-Match": '"9"', "Idempotency-Key": "p1"}
        )
        assert stale.status_code == 412
        replayed = await server.client.post(url, headers={**auth, "Idempotency-Key": "p1"})
        assert replayed.status_code == 412
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json()["code"] == "version_mismatch"
        # The same key on another order's route is another request.
        other_id = order["id"][:-1] + ("1" if order["id"].endswith("0") else "0")
        other = await server.client.post(
            f"{ORDERS}/{other_id}/pay", headers={**auth, "Idempotency-Key": "p1"}
        )
        assert other.status_code == 422


async def test_concurrent_requests_with_one_key_place_one_order(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 100)
        answers = []

        async def one() -> None:
            answers.append(await place(server, admin, [(mug, 1)], headers={"Idempotency-Key": "k"}))

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(one)
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}
        assert statuses.count(201) >= 1
        created = {a.json()["id"] for a in answers if a.status_code == 201}
        assert len(created) == 1
        for a in answers:
            if a.status_code == 409:
                assert a.json()["code"] == "idempotency_in_progress"
                assert "Retry-After" in a.headers
        assert await _orders(server) == 1


# ---------------------------------------------------------------- the keys table


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path}/keys.db", schemas=schemas_of()) as opened:
        yield opened


async def test_keys_expire_and_the_sweep_deletes_them(store: Store) -> None:
    keys = IdempotencyKeys(ttl=timedelta(hours=24))
    assert await keys.claim(store, "acme", "k1", "f1") is None
    assert await keys.claim(store, "acme", "k2", "f2") is None
    later = datetime.now(UTC) + timedelta(hours=25)
    assert await keys.sweep(store, now=datetime.now(UTC)) == 0
    assert await keys.sweep(store, now=later) == 2
    assert await store.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    # An expired key that the sweep has not reached yet is free again.
    short = IdempotencyKeys(ttl=timedelta(seconds=-1))
    assert await short.claim(store, "acme", "k3", "f3") is None
    assert await short.claim(store, "acme", "k3", "other") is None


async def test_a_claim_left_by_a_dead_process_is_taken_over_after_the_lease(
    store: Store,
) -> None:
    keys = IdempotencyKeys(lease=60.0)
    assert await keys.claim(store, "acme", "k", "f") is None
    with pytest.raises(Exception, match="still running") as running:
        await keys.claim(store, "acme", "k", "f")
    assert getattr(running.value, "status", None) == 409
    await store.execute(
        "UPDATE idempotency_keys SET claimed_at = $1",
        datetime.now(UTC) - timedelta(seconds=61),
    )
    assert await keys.claim(store, "acme", "k", "f") is None
    with pytest.raises(Exception, match="another request") as reused:
        await keys.claim(store, "acme", "k", "g")
    assert getattr(reused.value, "status", None) == 422


async def test_the_sweeper_runs_in_the_tree(server: Server) -> None:
    sweeper = server.app.system.ref("/app/modules/idempotency/sweeper")
    keys = server.app.context.get(IdempotencyKeys)
    store = server.app.context.store.store
    with trio.fail_after(30):
        await server.tenant("alpha")
        await keys.claim(store, "alpha", "old", "f")
        await store.execute(
            "UPDATE idempotency_keys SET expires_at = $1",
            datetime.now(UTC) - timedelta(seconds=1),
        )
        assert await sweeper.ask("sweep") == 1
        assert await store.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_a_retry_after_a_node_died_mid_request_finds_the_first_order(
    server: Server,
) -> None:
    """The node placed the order, then died before storing the answer; the lease lapsed.

    The dead node's rows are left as a SIGKILL leaves them: the order and its
    ``order.placed`` committed, the key still ``running``. The retry takes over
    the claim and answers the first order instead of placing a second one
    (the fault test ``tests/modules/orders/test_saga_faults.py`` does it with
    real kills).
    """
    admin = await server.key("alpha", "admin")
    store = server.app.context.store.store
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        key = {"Idempotency-Key": "order-died-0001"}
        first = await place(server, admin, [(mug, 2)], headers=key)
        assert first.status_code == 201, first.text
        await store.execute(
            "UPDATE idempotency_keys SET state = 'running', status = NULL, headers = NULL,"
            " body = NULL, claimed_at = $1",
            datetime.now(UTC) - timedelta(seconds=61),
        )
        again = await place(server, admin, [(mug, 2)], headers=key)
        assert again.status_code == 201, again.text
        assert "Idempotent-Replayed" not in again.headers  # run again, found the order
        assert again.headers["Location"] == first.headers["Location"]
        assert again.json()["id"] == first.json()["id"]
        assert await _orders(server) == 1
        # Another tenant's same key is its own order.
        beta = await server.key("beta", "admin")
        tea = await stocked_product(server, beta, 10)
        theirs = await place(server, beta, [(tea, 1)], headers=key)
        assert theirs.json()["id"] != first.json()["id"]
        assert await _orders(server) == 2
