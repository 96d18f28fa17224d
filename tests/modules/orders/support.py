"""Helpers of the orders tests: stocked products, orders, the outbox drained, events by order."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import trio

from tests.http.conftest import Server
from triotok.store import Wake
from triotok.transport import decode

ORDERS = "/api/orders"


async def stocked_product(
    server: Server, key: str, on_hand: int, *, price: int = 1290, currency: str = "EUR"
) -> str:
    """An active product with ``on_hand`` units, created through the API."""
    auth = server.auth(key)
    created = await server.client.post(
        "/api/products",
        json={
            "sku": f"SKU-{uuid.uuid4().hex[:12]}",
            "title": "Mug",
            "price": price,
            "currency": currency,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    url = f"/api/products/{created.json()['id']}"
    active = await server.client.patch(
        url, json={"status": "active"}, headers={**auth, "If-Match": '"1"'}
    )
    assert active.status_code == 200, active.text
    if on_hand:
        stocked = await server.client.post(
            f"{url}/inventory", json={"delta": on_hand, "reason": "in"}, headers=auth
        )
        assert stocked.status_code == 200, stocked.text
    return str(created.json()["id"])


async def place(
    server: Server,
    key: str,
    items: list[tuple[str, int]],
    *,
    wait: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /api/orders``, by default answered once commerce answered (``Prefer: wait``)."""
    extra = {"Prefer": "wait=10"} if wait else {}
    return await server.client.post(
        ORDERS,
        json={"items": [{"product_id": p, "quantity": q} for p, q in items]},
        headers={**server.auth(key), **extra, **(headers or {})},
    )


async def drained(server: Server) -> None:
    """Return once every committed event was handed to every subscriber (the saga rests).

    The relay marks a row delivered once the bus's subscribers handled it, and
    a handler's own events commit before it returns: no undelivered row left
    means no step of any saga is still to run.
    """
    store = server.app.context.store.store
    relay = server.app.system.ref("/app/transport/relay")
    with trio.fail_after(30):
        while await store.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"):
            await relay.ask(Wake())
            await trio.sleep(0.01)  # real threads and sockets: poll the condition


async def events_of(server: Server, order_id: str) -> list[str]:
    """The types of the events in the outbox that name ``order_id``, in order."""
    rows = await server.app.context.store.store.fetch(
        "SELECT event_type, payload FROM outbox ORDER BY id"
    )
    found = []
    for row in rows:
        payload: Any = decode(bytes(row["payload"])).payload
        if getattr(payload, "order_id", None) == order_id:
            found.append(str(row["event_type"]))
    return found


async def levels(server: Server, key: str, product_id: str) -> tuple[int, int, int]:
    product = (
        await server.client.get(f"/api/products/{product_id}", headers=server.auth(key))
    ).json()
    return product["on_hand"], product["reserved"], product["available"]
