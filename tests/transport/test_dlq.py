"""The in-memory dead-letter store on its own (the bus-bound queue is tested with the bus)."""

from __future__ import annotations

from trio.testing import MockClock

from triotok.transport import DeadLetterStore, InMemoryDeadLetterStore, PermanentError

from .test_bus_support import OrderPaid, ProductCreated, env


async def test_add_list_remove_and_statistics(autojump_clock: MockClock) -> None:
    store: DeadLetterStore = InMemoryDeadLetterStore()
    first = await store.add(
        env(ProductCreated("k", 1)),
        pattern="*",
        group=None,
        subscriber="/app/a",
        attempts=5,
        error=PermanentError("x" * 5000),
    )
    second = await store.add(
        env(OrderPaid("o", 2)),
        pattern="order.*",
        group="g",
        subscriber="/app/b",
        attempts=1,
        error=ValueError("bad"),
    )
    assert (first.id, second.id) == (1, 2)
    assert len(first.error_message) == 2000  # bounded
    assert first.error_type == "PermanentError"
    assert [e.id for e in await store.list()] == [1, 2]
    assert [e.id for e in await store.list(event_type="order.paid")] == [2]
    assert [e.id for e in await store.list(subscriber="/app/a")] == [1]
    assert [e.id for e in await store.list(group="g")] == [2]
    assert [e.id for e in await store.list(limit=1)] == [1]
    stats = store.statistics()
    assert stats.as_dict() == {
        "size": 2,
        "by_subscriber": {"/app/a": 1, "/app/b": 1},
        "by_event_type": {"product.created": 1, "order.paid": 1},
        "added": 2,
        "replayed": 0,
        "purged": 0,
    }
    assert await store.remove([1, 99], replayed=True) == 1
    assert await store.remove([2], replayed=False) == 1
    stats = store.statistics()
    assert (stats.size, stats.replayed, stats.purged) == (0, 1, 1)


async def test_entries_render_as_bounded_json(autojump_clock: MockClock) -> None:
    store = InMemoryDeadLetterStore()
    entry = await store.add(
        env(ProductCreated("k" * 500, 1)),
        pattern="*",
        group=None,
        subscriber="/app/a",
        attempts=2,
        error=PermanentError("no"),
    )
    view = entry.as_dict()
    assert view["event_type"] == "product.created"
    assert view["tenant_id"] == "acme"
    assert len(view["payload"]) == 200
    assert view["error"] == {"type": "PermanentError", "message": "no"}
    assert entry.event_type == "product.created"
