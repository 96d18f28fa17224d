"""The reservation API on a real store (a SQLite file and PostgreSQL): what the orders saga uses.

* all or nothing across the items of an order;
* a redelivered event (same id) reserves, releases or commits nothing twice;
* release gives the units back, commit (shipping) takes them out of on_hand;
* many concurrent adjustments and reservations never oversell nor go negative.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import trio

from tests.store.conftest import pg_cluster, pg_url, store_url  # noqa: F401  # fixtures
from triotok.app import schemas_of
from triotok.modules.commerce import Inventory, Item, Outcome, Product, ProductRepository, Status
from triotok.store import Store, open_store
from triotok.transport import Envelope, decode, event

TENANT = "acme"


@event("test.commerce.order.placed")
@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """A stand-in for the orders module's event (its id is what the inbox records)."""

    order_id: str


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811  # the fixture above
    async with open_store(store_url, schemas=schemas_of()) as opened:
        yield opened


def _placed(order_id: str, tenant: str = TENANT) -> Envelope:
    return Envelope.new(OrderPlaced(order_id), tenant_id=tenant)


async def _product(store: Store, on_hand: int, *, status: Status = Status.ACTIVE) -> str:
    now = datetime.now(UTC)
    product_id = str(uuid.uuid4())
    product = Product(
        TENANT,
        product_id,
        f"SKU-{product_id[:8]}",
        "T",
        100,
        "EUR",
        status,
        now,
        now,
        on_hand=on_hand,
    )
    async with store.transaction() as tx:
        await ProductRepository().insert(tx, product)
    return product_id


async def _levels(store: Store, product_id: str) -> tuple[int, int]:
    row = await store.fetchrow(
        "SELECT on_hand, reserved FROM commerce_products WHERE id = $1", product_id
    )
    assert row is not None
    return int(row["on_hand"]), int(row["reserved"])


async def _outbox(store: Store) -> list[tuple[str, object]]:
    rows = await store.fetch("SELECT payload FROM outbox ORDER BY id")
    return [(e.event_type, e.payload) for e in (decode(bytes(r["payload"])) for r in rows)]


async def test_every_item_of_an_order_is_reserved_together(store: Store) -> None:
    inventory = Inventory()
    with trio.fail_after(30):
        a, b = await _product(store, 5), await _product(store, 3)
        # Quantities of one product are summed: 4 of a, 3 of b.
        items = [Item(a, 3), Item(b, 1), Item(b, 2), Item(a, 1)]
        result = await inventory.reserve(store, _placed("o-1"), "o-1", items)
        assert result.outcome is Outcome.RESERVED
        assert await _levels(store, a) == (5, 4)
        assert await _levels(store, b) == (3, 3)
        held = await store.fetch(
            "SELECT product_id, quantity, state FROM commerce_reservations WHERE order_id = $1",
            "o-1",
        )
        assert sorted((r["product_id"], r["quantity"], r["state"]) for r in held) == sorted(
            [(a, 4, "reserved"), (b, 3, "reserved")]
        )
        [(event_type, payload)] = await _outbox(store)
        assert event_type == "inventory.reserved"
        assert payload == result.event.payload if result.event else False


@pytest.mark.parametrize("short_first", [True, False])
async def test_one_short_item_reserves_nothing(store: Store, short_first: bool) -> None:
    inventory = Inventory()
    with trio.fail_after(30):
        plenty, scarce = await _product(store, 10), await _product(store, 2)
        draft = await _product(store, 10, status=Status.DRAFT)
        items = [Item(scarce, 1), Item(scarce, 2), Item(plenty, 4)]
        if not short_first:
            items.reverse()
        result = await inventory.reserve(store, _placed("o-1"), "o-1", items)
        assert result.outcome is Outcome.REJECTED
        assert [
            (str(s.product_id), s.requested, s.available, s.reason) for s in result.shortages
        ] == [(scarce, 3, 2, "insufficient_stock")]
        assert await _levels(store, plenty) == (10, 0)
        assert await _levels(store, scarce) == (2, 0)
        missing = str(uuid.uuid4())
        other = await inventory.reserve(
            store, _placed("o-2"), "o-2", [Item(plenty, 1), Item(draft, 1), Item(missing, 1)]
        )
        assert other.outcome is Outcome.REJECTED
        assert {(str(s.product_id), s.reason) for s in other.shortages} == {
            (draft, "unavailable"),
            (missing, "unavailable"),
        }
        assert await _levels(store, plenty) == (10, 0)
        held = await store.fetchval("SELECT count(*) FROM commerce_reservations")
        assert held == 0
        events = await _outbox(store)
        assert [t for t, _ in events] == ["inventory.rejected", "inventory.rejected"]


async def test_reserve_release_and_commit_each_act_once_under_redelivery(store: Store) -> None:
    inventory = Inventory()
    with trio.fail_after(30):
        a, b = await _product(store, 5), await _product(store, 3)
        placed = _placed("o-1")
        first = await inventory.reserve(store, placed, "o-1", [Item(a, 4), Item(b, 1)])
        assert first.outcome is Outcome.RESERVED
        assert first.event is not None
        # The answer continues the order's conversation.
        assert first.event.correlation_id == placed.correlation_id
        assert first.event.causation_id == placed.id
        assert [
            (str(x.product_id), x.quantity, x.on_hand, x.reserved) for x in first.lines
        ] == sorted([(a, 4, 5, 4), (b, 1, 3, 1)])
        again = await inventory.reserve(store, placed, "o-1", [Item(a, 4), Item(b, 1)])
        assert again.outcome is Outcome.DUPLICATE
        # Another event for the same order reserves nothing either.
        other = await inventory.reserve(store, _placed("o-1"), "o-1", [Item(a, 1)])
        assert other.outcome is Outcome.DUPLICATE
        assert await _levels(store, a) == (5, 4)

        shipped = _placed("o-1")
        committed = await inventory.commit(store, shipped, "o-1")
        assert committed.outcome is Outcome.COMMITTED
        assert await _levels(store, a) == (1, 0)
        assert await _levels(store, b) == (2, 0)
        assert (await inventory.commit(store, shipped, "o-1")).outcome is Outcome.DUPLICATE
        # Releasing a shipped order gives nothing back (its units have left).
        late = await inventory.release(store, _placed("o-1"), "o-1")
        assert (late.outcome, late.lines) == (Outcome.RELEASED, ())
        assert await _levels(store, a) == (1, 0)

        c = await _product(store, 2)
        await inventory.reserve(store, _placed("o-2"), "o-2", [Item(c, 2)])
        assert await _levels(store, c) == (2, 2)
        cancelled = _placed("o-2")
        released = await inventory.release(store, cancelled, "o-2")
        assert [x.reserved for x in released.lines] == [0]
        assert (await inventory.release(store, cancelled, "o-2")).outcome is Outcome.DUPLICATE
        assert (await inventory.release(store, _placed("o-2"), "o-2")).lines == ()
        assert await _levels(store, c) == (2, 0)
        states = await store.fetch(
            "SELECT order_id, state FROM commerce_reservations ORDER BY order_id, product_id"
        )
        assert [(r["order_id"], r["state"]) for r in states] == [
            ("o-1", "committed"),
            ("o-1", "committed"),
            ("o-2", "released"),
        ]
        assert [t for t, _ in await _outbox(store)] == [
            "inventory.reserved",
            "inventory.committed",
            "inventory.released",
            "inventory.reserved",
            "inventory.released",
            "inventory.released",
        ]


async def test_concurrent_reservations_and_adjustments_never_oversell(store: Store) -> None:
    """50 orders of 1 for 10 units, while the stock is counted down and up concurrently."""
    inventory = Inventory()
    repository = ProductRepository()
    product_id = await _product(store, 10)
    outcomes: list[Outcome] = []
    adjusted: list[int] = []

    async def order(n: int) -> None:
        result = await inventory.reserve(store, _placed(f"o-{n}"), f"o-{n}", [Item(product_id, 1)])
        outcomes.append(result.outcome)

    async def adjust(delta: int) -> None:
        async with store.transaction() as tx:
            levels = await repository.adjust(tx, TENANT, product_id, delta, datetime.now(UTC))
        if levels is not None:
            adjusted.append(delta)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(order, n)
                if n % 5 == 0:
                    nursery.start_soon(adjust, -3)
                    nursery.start_soon(adjust, 1)
        on_hand, reserved = await _levels(store, product_id)
    assert 0 <= reserved <= on_hand
    assert on_hand == 10 + sum(adjusted)
    assert reserved == outcomes.count(Outcome.RESERVED)
    assert outcomes.count(Outcome.RESERVED) + outcomes.count(Outcome.REJECTED) == 50
