"""The order saga with real node processes on one PostgreSQL: a race, and SIGKILLs.

Each node is ``python tests/telemetry/_node.py`` (``tests/appnode.py``): the whole application
(orders, commerce, search, the relay) serving HTTP, configured by
``TRIOTOK_*`` variables. The payment provider is the local
:class:`~tests.modules.orders.provider.ProviderServer` (outside the system:
the one thing mocked), which counts the charges and refunds really made.

* The race: 50 concurrent orders for a product with 10 units, placed through
  two node processes at once: exactly 10 confirmed, 40 cancelled
  ``insufficient_stock``, none available, no oversell.
* The faults: 200 sagas (place, then for some pay, for some cancel, which
  refunds a paid order) driven by clients that retry with the same
  ``Idempotency-Key`` as a real client does, while the node is SIGKILLed at
  random points and restarted. Once it rests: 200 orders for 200 keys, each
  ``confirmed``, ``paid`` or ``cancelled``; each product's ``reserved`` is
  exactly the quantities of its confirmed and paid orders and ``on_hand`` is
  untouched (no reservation leaked); no charge or refund was made twice, and
  every charge belongs to a paid or a refunded order.

Waiting for another process is polling (the store or HTTP) every ``POLL``
seconds under ``trio.fail_after``: there is no in-process event across a
process boundary. The kill points come from a seeded generator; the seed is
printed and ``TRIOTOK_FAULT_SEED`` replays one.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from tests.appnode import node_env, start_node
from tests.modules.orders.provider import ProviderServer
from triotok.app import open_application
from triotok.config import load_settings
from triotok.modules.access import ApiKeyRepository, Role
from triotok.modules.tenants import TenantRepository
from triotok.store import Store, open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POLL = 0.05
TENANT = "acme"
#: What a client retries: the node is down or restarting, or asks to come back later.
RETRY_STATUSES = frozenset({409, 429, 502, 503})
TRANSPORT_ERRORS = (httpx.TransportError,)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(store_url: str, port: int, **settings: str) -> dict[str, str]:
    """A node on ``port`` (fixed, so a restarted node answers where it did), no rate limits."""
    return node_env(
        port=str(port),
        store_url=store_url,
        rate_limit_per_ip="1000000",
        rate_limit_per_key="1000000",
        log_level="error",
        **settings,
    )


class Node:
    """A restartable node process serving on one fixed port."""

    def __init__(self, nursery: trio.Nursery, env: dict[str, str]) -> None:
        self._nursery = nursery
        self._env = env
        self.process: trio.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._env['TRIOTOK_PORT']}"

    async def start(self) -> None:
        """Start the process; return once it is ready."""
        self.process, _ = await start_node(self._env, self._nursery)
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no cleanup, whatever was in flight is cut where it was."""
        assert self.process is not None
        self.process.kill()
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(15):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
            await self.process.wait()


@asynccontextmanager
async def running(*envs: dict[str, str]) -> AsyncIterator[list[Node]]:
    """Started nodes, one per environment, stopped (SIGTERM) on the way out."""
    async with trio.open_nursery() as nursery:
        nodes = [Node(nursery, env) for env in envs]
        try:
            for node in nodes:
                await node.start()
            yield nodes
        finally:
            with trio.CancelScope(shield=True):
                for node in nodes:
                    await node.stop()


async def admin_key(store_url: str) -> str:
    """Migrate the database and create the tenant and an admin key (before any node runs)."""
    flags = {"port": 0, "store_url": store_url, "relay": False}
    async with open_application(load_settings(flags=flags), serve_http=False) as app:
        await app.context.get(TenantRepository).create(TENANT, "Acme", actor="test")
        _, key = await app.context.get(ApiKeyRepository).create(TENANT, Role.ADMIN, actor="test")
    return key


async def call(
    client: httpx.AsyncClient, method: str, url: str, *, key: str, **kwargs: Any
) -> httpx.Response:
    """One request as a patient client makes it: retried while the node is down or busy.

    Only safe to retry because every mutation below is idempotent: an
    ``Idempotency-Key``, or a transition the lifecycle refuses twice (409).
    """
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    while True:
        try:
            response = await client.request(method, url, headers=headers, **kwargs)
        except TRANSPORT_ERRORS:
            SEEN["transport errors"] += 1
        else:
            if response.status_code not in RETRY_STATUSES or _final(response):
                return response
            SEEN[f"retried {response.status_code}"] += 1
        await trio.sleep(POLL)


def _final(response: httpx.Response) -> bool:
    """A 409 of the lifecycle (``invalid_transition``) is an answer, not a reason to retry."""
    try:
        code = response.json().get("code")
    except ValueError:
        return False
    return response.status_code == 409 and code != "idempotency_in_progress"


#: What the clients met on their way: the kills must have cut requests.
SEEN: Counter[str] = Counter()


async def product(client: httpx.AsyncClient, key: str, on_hand: int) -> str:
    sku = f"SKU-{secrets.token_hex(4)}"
    created = await call(
        client,
        "POST",
        "/api/products",
        key=key,
        json={"sku": sku, "title": "Mug", "price": 1290, "currency": "EUR"},
    )
    assert created.status_code == 201, created.text
    url = f"/api/products/{created.json()['id']}"
    active = await call(client, "PATCH", url, key=key, json={"status": "active", "version": 1})
    assert active.status_code == 200, active.text
    stocked = await call(
        client, "POST", f"{url}/inventory", key=key, json={"delta": on_hand, "reason": "in"}
    )
    assert stocked.status_code == 200, stocked.text
    return str(created.json()["id"])


async def settled(client: httpx.AsyncClient, key: str, order_id: str) -> dict[str, Any]:
    """The order once the saga moved it on from ``pending`` (polling another process)."""
    while True:
        response = await call(client, "GET", f"/api/orders/{order_id}", key=key)
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        if order["status"] != "pending":
            return order
        await trio.sleep(POLL)


async def at_rest(store: Store) -> None:
    """Poll until no order is pending and every outbox row was delivered."""
    while await store.fetchval(  # noqa: ASYNC110  # other processes' writes: no event to wait on
        "SELECT (SELECT count(*) FROM orders_orders WHERE status = 'pending')"
        " + (SELECT count(*) FROM outbox WHERE delivered_at IS NULL)"
    ):
        await trio.sleep(POLL)


# --------------------------------------------------------------------------- the race


async def test_fifty_orders_for_ten_units_through_two_node_processes(pg_url: str) -> None:
    key = await admin_key(pg_url)
    with trio.fail_after(120):
        envs = [env_for(pg_url, free_port()) for _ in range(2)]
        async with (
            running(*envs) as nodes,
            httpx.AsyncClient(base_url=nodes[0].url, timeout=30) as one,
            httpx.AsyncClient(base_url=nodes[1].url, timeout=30) as two,
        ):
            mug = await product(one, key, 10)
            placed: list[str] = []

            async def order(client: httpx.AsyncClient) -> None:
                body = {"items": [{"product_id": mug, "quantity": 1}]}
                response = await call(client, "POST", "/api/orders", key=key, json=body)
                assert response.status_code == 201, response.text
                placed.append(response.json()["id"])

            async with trio.open_nursery() as nursery:
                for n in range(50):
                    nursery.start_soon(order, one if n % 2 else two)
            outcomes: Counter[tuple[str, str | None]] = Counter()
            for order_id in placed:
                done = await settled(one, key, order_id)
                outcomes[done["status"], done["cancel_reason"]] += 1
            level = (await call(two, "GET", f"/api/products/{mug}", key=key)).json()
        async with open_store(pg_url) as store:
            await at_rest(store)
            row = await store.fetchrow(
                "SELECT on_hand, reserved FROM commerce_products WHERE id = $1", mug
            )
    assert len(set(placed)) == 50
    assert outcomes == {("confirmed", None): 10, ("cancelled", "insufficient_stock"): 40}
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 10, 0)
    assert row is not None
    assert (row["on_hand"], row["reserved"]) == (10, 10)


# --------------------------------------------------------------------------- the faults

SAGAS = 200
CLIENTS = 8
KILLS = 6
PRODUCTS = 4
STOCK = 30


async def test_sigkill_at_random_points_of_two_hundred_sagas(pg_url: str) -> None:
    seed = int(os.environ.get("TRIOTOK_FAULT_SEED", secrets.randbits(32)))
    print(f"TRIOTOK_FAULT_SEED={seed}")
    rng = random.Random(seed)
    key = await admin_key(pg_url)
    plans = [
        (
            [(p, rng.randint(1, 2)) for p in rng.sample(range(PRODUCTS), rng.randint(1, 2))],
            rng.random() < 0.6,  # pay once confirmed
            rng.random() < 0.2,  # then cancel (a paid order is refunded)
        )
        for _ in range(SAGAS)
    ]
    kill_after = [rng.uniform(0.3, 2.0) for _ in range(KILLS)]
    SEEN.clear()
    with ProviderServer() as provider, trio.fail_after(240):
        env = env_for(
            pg_url,
            free_port(),
            payments_provider="http",
            payments_url=provider.url,
            payments_timeout="2",
            idempotency_lease="2",
        )
        async with running(env) as (node,):
            async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
                products = [await product(client, key, STOCK) for _ in range(PRODUCTS)]
                pending = iter(range(SAGAS))
                orders: dict[int, str] = {}

                async def saga(n: int) -> None:
                    items, pay, cancel = plans[n]
                    body = {"items": [{"product_id": products[p], "quantity": q} for p, q in items]}
                    placed = await call(
                        client,
                        "POST",
                        "/api/orders",
                        key=key,
                        json=body,
                        headers={"Idempotency-Key": f"saga-{n}"},
                    )
                    assert placed.status_code == 201, placed.text
                    order_id = orders[n] = placed.json()["id"]
                    if not (pay or cancel):
                        return
                    order = await settled(client, key, order_id)
                    if order["status"] == "confirmed" and pay:
                        paid = await call(
                            client,
                            "POST",
                            f"/api/orders/{order_id}/pay",
                            key=key,
                            headers={"Idempotency-Key": f"pay-{n}"},
                        )
                        # 409: a retry after the node died having recorded the payment.
                        assert paid.status_code in (200, 409), paid.text
                    if order["status"] == "confirmed" and cancel:
                        cancelled = await call(
                            client,
                            "POST",
                            f"/api/orders/{order_id}/cancel",
                            key=key,
                            json={"reason": "changed-mind"},
                        )
                        assert cancelled.status_code in (200, 409), cancelled.text

                async def worker() -> None:
                    for n in pending:
                        await saga(n)

                async def killer() -> None:
                    for delay in kill_after:
                        await trio.sleep(delay)  # a random point of the running sagas
                        await node.kill()
                        await node.start()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(killer)
                    for _ in range(CLIENTS):
                        nursery.start_soon(worker)
            async with open_store(pg_url) as store:
                await at_rest(store)
                rows = await store.fetch("SELECT id, status, items FROM orders_orders")
                levels = {
                    str(r["id"]): (int(r["on_hand"]), int(r["reserved"]))
                    for r in await store.fetch(
                        "SELECT id, on_hand, reserved FROM commerce_products"
                    )
                }
                placements = await store.fetchval("SELECT count(*) FROM orders_placements")
    stats = provider.stats()["performed"]
    assert node.starts == KILLS + 1
    print(dict(SEEN))
    assert SEEN["transport errors"] > 0  # the kills cut requests in flight
    # One order per key: a retry after a kill never placed a second one.
    assert len(rows) == len(set(orders.values())) == SAGAS == placements
    statuses = Counter(str(r["status"]) for r in rows)
    assert set(statuses) <= {"confirmed", "paid", "cancelled"}, statuses
    # No reservation leaked: reserved is exactly what confirmed and paid orders hold.
    held: Counter[str] = Counter()
    for r in rows:
        if r["status"] in ("confirmed", "paid"):
            for item in json.loads(str(r["items"])):
                held[item["product_id"]] += item["quantity"]
    for product_id in products:
        on_hand, reserved = levels[product_id]
        assert on_hand == STOCK  # nothing shipped
        assert reserved == held[product_id], (product_id, reserved, held[product_id])
        assert 0 <= reserved <= on_hand
    # Nothing charged or refunded twice; every charge is a paid order or was refunded.
    assert all(count == 1 for count in stats.values()), stats
    charged = {k.removesuffix(":charge") for k in stats if k.endswith(":charge")}
    refunded = {k.removesuffix(":refund") for k in stats if k.endswith(":refund")}
    by_status = {str(r["id"]): str(r["status"]) for r in rows}
    assert charged == {i for i, s in by_status.items() if s == "paid"} | refunded
    assert all(by_status[i] == "cancelled" for i in refunded)
    assert min(statuses["paid"], statuses["cancelled"], statuses["confirmed"]) > 0
