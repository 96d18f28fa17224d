"""50 concurrent orders for a product with 10 units, on one SQLite node: never oversold.

All 50 are placed at once over HTTP; once the saga rests, exactly 10 are
confirmed, 40 cancelled ``insufficient_stock``, and the product has 10
reserved and none available. (The same race through two node processes on one PostgreSQL is in
``test_saga_faults.py``.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import trio

from tests.http.conftest import Server, ServerFactory

from .support import ORDERS, drained, levels, place, stocked_product


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only: one process, one file."""
    return f"sqlite:///{tmp_path}/race.db"


async def test_fifty_orders_for_ten_units_confirm_exactly_ten(make_server: ServerFactory) -> None:
    async with make_server() as server:
        await _race(server)


async def _race(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(120):
        mug = await stocked_product(server, admin, 10)
        placed: list[str] = []

        async def order() -> None:
            response = await place(server, admin, [(mug, 1)], wait=False)
            assert response.status_code == 201, response.text
            placed.append(response.json()["id"])

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(order)
        await drained(server)
        outcomes: Counter[tuple[str, str | None]] = Counter()
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = await server.client.get(ORDERS, params=params, headers=server.auth(admin))
            for o in page.json()["items"]:
                outcomes[o["status"], o["cancel_reason"]] += 1
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(placed) == 50
        assert outcomes == {("confirmed", None): 10, ("cancelled", "insufficient_stock"): 40}
        assert await levels(server, admin, mug) == (10, 10, 0)
