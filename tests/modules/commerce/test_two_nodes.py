"""Two application nodes on one SQLite database adjust and reserve the same product's stock.

Each node has its own entity for the product. Stock changes are conditional
updates the database checks, so many concurrent removals through both nodes,
racing reservations, never take ``on_hand`` below ``reserved`` or below 0;
every accepted removal left one ``inventory.adjusted`` event and every
refusal answered 409.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from triotok.app import open_application
from triotok.config import load_settings
from triotok.modules.access import ApiKeyRepository, Role
from triotok.modules.commerce import Inventory, Item, Outcome
from triotok.modules.tenants import TenantRepository
from triotok.transport import Envelope

from .test_inventory import OrderPlaced

PRODUCTS = "/api/products"
_MUG = {"sku": "MUG", "title": "Mug", "price": 990, "currency": "EUR"}


async def test_two_nodes_never_oversell_nor_go_negative(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    flags = {"port": 0, "store_url": url, "rate_limit_per_ip": 10**6, "graceful_timeout": 2.0}
    with trio.fail_after(90):
        async with (
            open_application(load_settings(flags=flags)) as one,
            open_application(load_settings(flags=flags)) as two,
        ):
            await one.context.get(TenantRepository).create("acme", "Acme", actor="test")
            _, key = await one.context.get(ApiKeyRepository).create(
                "acme", Role.ADMIN, actor="test"
            )
            auth = {"Authorization": f"Bearer {key}"}
            async with (
                httpx.AsyncClient(base_url=one.url, timeout=30) as a,
                httpx.AsyncClient(base_url=two.url, timeout=30) as b,
            ):
                product_id = (await a.post(PRODUCTS, json=_MUG, headers=auth)).json()["id"]
                url_of = f"{PRODUCTS}/{product_id}"
                await a.patch(url_of, json={"status": "active", "version": 1}, headers=auth)
                stock = {"delta": 20, "reason": "delivery"}
                await b.post(f"{url_of}/inventory", json=stock, headers=auth)
                statuses: list[int] = []
                outcomes: list[Outcome] = []

                async def remove(client: httpx.AsyncClient) -> None:
                    change = {"delta": -3, "reason": "write-off"}
                    response = await client.post(f"{url_of}/inventory", json=change, headers=auth)
                    statuses.append(response.status_code)

                async def order(n: int) -> None:
                    placed = Envelope.new(OrderPlaced(f"o-{n}"), tenant_id="acme")
                    store = (one if n % 2 else two).context.store.store
                    result = await Inventory().reserve(
                        store, placed, f"o-{n}", [Item(product_id, 2)]
                    )
                    outcomes.append(result.outcome)

                async with trio.open_nursery() as nursery:
                    for n in range(10):
                        nursery.start_soon(remove, a if n % 2 else b)
                        nursery.start_soon(order, n)
                # Both nodes answer the same stock (reads reload the row).
                seen_a = (await a.get(url_of, headers=auth)).json()
                seen_b = (await b.get(url_of, headers=auth)).json()
                # A write based on the version read on the other node is not refused.
                renamed = await a.patch(
                    url_of,
                    json={"title": "Big mug"},
                    headers={**auth, "If-Match": f'"{seen_b["version"]}"'},
                )
                assert renamed.status_code == 200, renamed.text
            row = await one.context.store.store.fetchrow(
                "SELECT on_hand, reserved FROM commerce_products WHERE id = $1", product_id
            )
            adjusted = await one.context.store.store.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = 'inventory.adjusted'"
            )
    assert row is not None
    on_hand, reserved = int(row["on_hand"]), int(row["reserved"])
    assert set(statuses) <= {200, 409}
    assert 0 <= reserved <= on_hand
    assert on_hand == 20 - 3 * statuses.count(200)
    assert reserved == 2 * outcomes.count(Outcome.RESERVED)
    assert adjusted == 1 + statuses.count(200)
    assert statuses.count(409) > 0 or outcomes.count(Outcome.REJECTED) > 0  # it was contended
    assert seen_a["on_hand"] == seen_b["on_hand"] == on_hand
    assert seen_a["reserved"] == seen_b["reserved"] == reserved
