"""The in-memory dead-letter log on its own (the operator API: test_dead_letter_contract)."""

from __future__ import annotations

import pytest
from trio.testing import MockClock

from triotok.store import NotFound
from triotok.transport import (
    DeadLetterFilter,
    DeadLetterLog,
    InMemoryDeadLetterLog,
    InMemoryDeadLetterStore,
    InvalidConfig,
    PermanentError,
)

from .test_bus_support import OrderPaid, ProductCreated, env

ANY = DeadLetterFilter()


async def test_add_list_remove_and_statistics(autojump_clock: MockClock) -> None:
    store: DeadLetterLog = InMemoryDeadLetterLog()
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
    assert [e.id for e in await store.list(ANY, limit=10)] == [1, 2]
    assert [e.id for e in await store.list(DeadLetterFilter("order.paid"), limit=10)] == [2]
    assert [e.id for e in await store.list(DeadLetterFilter(subscriber="/app/a"), limit=10)] == [1]
    assert [e.id for e in await store.list(DeadLetterFilter(group="g"), limit=10)] == [2]
    assert [e.id for e in await store.list(ANY, limit=1)] == [1]
    assert [e.id for e in await store.list(ANY, limit=10, after=1)] == [2]
    assert await store.count(DeadLetterFilter("order.paid")) == 1
    assert (await store.get(2)).group == "g"
    with pytest.raises(NotFound):
        await store.get(3)
    with pytest.raises(InvalidConfig):
        await store.list(ANY, limit=0)
    stats = await store.statistics()
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
    stats = await store.statistics()
    assert (stats.size, stats.replayed, stats.purged) == (0, 1, 1)


def test_the_old_name_still_imports() -> None:
    assert InMemoryDeadLetterStore is InMemoryDeadLetterLog


async def test_entries_render_as_bounded_json(autojump_clock: MockClock) -> None:
    store = InMemoryDeadLetterLog()
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
    assert (view["source"], view["reason"], view["payload_bytes"]) == ("bus", "permanent", None)
    assert entry.event_type == "product.created"
