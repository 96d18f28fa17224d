"""One contract, every dead-letter store: the same tests against each ``DeadLetterStore``.

Backends: the bus's queue over its in-memory log, the bus's queue over the
durable log (``event_dead_letters``, source ``bus``) and the outbox relay's
table (source ``outbox``), the durable ones on a SQLite file and on
PostgreSQL. Each backend is seeded the way production fills it (a subscriber
that fails permanently; outbox rows the relay gave up on), with the same
three events: ``product.created`` n=1 and n=2, ``order.paid`` n=3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from triotok.store import (
    ConflictError,
    DurableDeadLetterLog,
    EventDeadLetters,
    NotFound,
    Store,
    open_store,
)
from triotok.testing import TestSystem, open_test_system
from triotok.transport import (
    DeadLetterStore,
    Envelope,
    EventBus,
    InvalidConfig,
    PermanentError,
    decode,
    encode,
)

from ..transport.test_bus_support import REGISTRY, OrderPaid, ProductCreated, Recorder, Seen, env
from ..transport.test_bus_support import open_bus as open_test_bus

SUBSCRIBER = "/test/r"


class Switch:
    """A subscriber script: fails permanently until switched off."""

    def __init__(self) -> None:
        self.failing = True

    def __call__(self, envelope: Envelope) -> BaseException | None:
        return PermanentError("no") if self.failing else None


@dataclass
class Harness:
    """A seeded store plus what a test needs to see the effect of a replay."""

    name: str
    source: str
    store: DeadLetterStore
    system: TestSystem | None = None
    bus: EventBus | None = None
    db: Store | None = None
    switch: Switch = field(default_factory=Switch)
    log: list[Seen] = field(default_factory=list)

    async def seed(self, *events: Envelope) -> None:
        if self.bus is not None:
            for envelope in events:
                await self.bus.deliver(envelope)  # returns once dead-lettered
            self.switch.failing = False  # replays succeed from now on
            return
        assert self.db is not None
        dead = self.store
        assert isinstance(dead, EventDeadLetters)
        async with self.db.transaction() as tx:
            for envelope in events:
                await tx.publish(
                    encode(envelope, registry=REGISTRY),
                    event_id=str(envelope.id),
                    event_type=envelope.event_type,
                    tenant_id=envelope.tenant_id,
                )
        for row in await self.db.claim_outbox("node-1", limit=100):
            assert await dead.add(row, "permanent", "PermanentError: no", node_id="node-1")

    async def replayed(self) -> list[int]:
        """The ``n`` of every event handed back so far (bus: handled; outbox: due again)."""
        if self.system is not None:
            await self.system.settle()
            return sorted(s.n for s in self.log if s.ok)
        assert self.db is not None
        rows = await self.db.fetch("SELECT payload FROM outbox WHERE delivered_at IS NULL")
        return sorted(decode(bytes(r["payload"]), registry=REGISTRY).payload.n for r in rows)


BACKENDS = [
    "bus-memory",
    "bus-sqlite",
    pytest.param("bus-postgresql", marks=pytest.mark.postgres),
    "outbox-sqlite",
    pytest.param("outbox-postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
async def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    name: str = request.param
    source, _, backend = name.partition("-")
    async with AsyncExitStack() as stack:
        db: Store | None = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('dlq')}/triotok.db"
            db = await stack.enter_async_context(open_store(url))
        elif backend == "postgresql":
            db = await stack.enter_async_context(open_store(request.getfixturevalue("pg_url")))
        if source == "outbox":
            assert db is not None
            yield Harness(name, source, EventDeadLetters(db, registry=REGISTRY), db=db)
            return
        system = await stack.enter_async_context(open_test_system(intensity=1000))
        log = DurableDeadLetterLog(db, registry=REGISTRY) if db is not None else None
        bus = await stack.enter_async_context(open_test_bus(system, dead_letters=log))
        h = Harness(name, source, bus.dead_letters, system=system, bus=bus, db=db)
        await bus.subscribe("*", await system.spawn(Recorder, h.log, h.switch, name="r"))
        yield h


def _three() -> tuple[Envelope, Envelope, Envelope]:
    return (
        env(ProductCreated("k", 1)),
        env(ProductCreated("k", 2)),
        env(OrderPaid("o", 3), tenant="globex"),
    )


def _n(entries: list[Any]) -> list[int]:
    return [e.envelope.payload.n for e in entries]


# ---------------------------------------------------------------------------- reading


async def test_list_is_oldest_first_and_pages_with_after(harness: Harness) -> None:
    first, second, third = _three()
    await harness.seed(first, second, third)
    entries = await harness.store.list()
    assert _n(entries) == [1, 2, 3]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert [e.event_id for e in entries] == [str(x.id) for x in (first, second, third)]
    assert _n(await harness.store.list(limit=2)) == [1, 2]
    assert _n(await harness.store.list(after=entries[0].id)) == [2, 3]
    assert await harness.store.list(after=entries[-1].id) == []
    with pytest.raises(InvalidConfig):
        await harness.store.list(limit=0)


async def test_entries_have_one_shape(harness: Harness) -> None:
    await harness.seed(*_three())
    entry = (await harness.store.list())[2]
    assert (entry.source, entry.event_type, entry.tenant_id) == (
        harness.source,
        "order.paid",
        "globex",
    )
    assert (entry.reason, entry.error_type, entry.error_message) == (
        "permanent",
        "PermanentError",
        "no",
    )
    assert entry.attempts == 1
    view = entry.as_dict()
    assert sorted(view) == sorted(
        [
            "id",
            "source",
            "event_id",
            "event_type",
            "tenant_id",
            "payload",
            "payload_bytes",
            "pattern",
            "group",
            "subscriber",
            "attempts",
            "reason",
            "error",
            "outbox_id",
            "node_id",
            "dead_at",
        ]
    )
    assert view["error"] == {"type": "PermanentError", "message": "no"}
    assert "OrderPaid" in view["payload"]
    if harness.source == "bus":
        assert (view["pattern"], view["subscriber"], view["outbox_id"]) == ("*", SUBSCRIBER, None)
    else:
        assert (view["pattern"], view["subscriber"], view["group"]) == (None, None, None)
        assert view["outbox_id"] is not None


async def test_get_returns_the_listed_entry(harness: Harness) -> None:
    await harness.seed(*_three())
    for entry in await harness.store.list():
        assert await harness.store.get(entry.id) == entry


async def test_filters_are_the_same_everywhere(harness: Harness) -> None:
    await harness.seed(*_three())
    store = harness.store
    assert _n(await store.list(event_type="product.created")) == [1, 2]
    assert _n(await store.list(event_type="order.paid")) == [3]
    assert await store.list(event_type="nothing.here") == []
    assert await store.count(event_type="product.created") == 2
    assert await store.count() == 3
    # Outbox entries have no subscriber or group: a filter on them matches none.
    by_subscriber = 3 if harness.source == "bus" else 0
    assert len(await store.list(subscriber=SUBSCRIBER)) == by_subscriber
    assert await store.count(subscriber=SUBSCRIBER) == by_subscriber
    assert await store.list(subscriber="/test/nobody") == []
    assert await store.list(group="g") == []


async def test_unknown_ids_raise_not_found(harness: Harness) -> None:
    await harness.seed(*_three())
    for call in (harness.store.get, harness.store.replay, harness.store.purge):
        with pytest.raises(NotFound, match="no dead-lettered event with id 424242"):
            await call(424242)
    assert await harness.store.count() == 3


# ---------------------------------------------------------------------------- replay


async def test_replay_one(harness: Harness) -> None:
    await harness.seed(*_three())
    first, *_ = await harness.store.list()
    await harness.store.replay(first.id)
    assert _n(await harness.store.list()) == [2, 3]
    with pytest.raises(NotFound):
        await harness.store.replay(first.id)  # gone: never replayed twice
    assert await harness.replayed() == [1]


async def test_replay_matching(harness: Harness) -> None:
    await harness.seed(*_three())
    assert await harness.store.replay_where(event_type="product.created") == 2
    assert await harness.store.replay_where(event_type="product.created") == 0
    assert _n(await harness.store.list()) == [3]
    assert await harness.replayed() == [1, 2]


async def test_replay_all(harness: Harness) -> None:
    await harness.seed(*_three())
    assert await harness.store.replay_all() == 3
    assert await harness.store.list() == []
    assert await harness.replayed() == [1, 2, 3]
    assert (await harness.store.statistics()).replayed == 3


# ---------------------------------------------------------------------------- purge


async def test_purge_one(harness: Harness) -> None:
    await harness.seed(*_three())
    _, second, _ = await harness.store.list()
    await harness.store.purge(second.id)
    assert _n(await harness.store.list()) == [1, 3]
    with pytest.raises(NotFound):
        await harness.store.purge(second.id)
    assert await harness.replayed() == []


async def test_purge_matching_and_by_age(harness: Harness) -> None:
    await harness.seed(*_three())
    store = harness.store
    assert await store.purge_where(event_type="order.paid") == 1
    assert await store.purge_where(older_than=timedelta(hours=1)) == 0
    assert _n(await store.list()) == [1, 2]
    assert await store.purge_where(older_than=timedelta(seconds=-1)) == 2
    assert await store.list() == []
    assert await harness.replayed() == []


async def test_purge_all(harness: Harness) -> None:
    await harness.seed(*_three())
    assert await harness.store.purge_where() == 3
    assert await harness.store.count() == 0


# ---------------------------------------------------------------------------- statistics


async def test_statistics(harness: Harness) -> None:
    await harness.seed(*_three())
    stats = await harness.store.statistics()
    assert stats.size == 3
    assert stats.by_event_type == {"product.created": 2, "order.paid": 1}
    assert stats.by_subscriber == ({SUBSCRIBER: 3} if harness.source == "bus" else {})
    first, second, _ = await harness.store.list()
    await harness.store.replay(first.id)
    await harness.store.purge(second.id)
    stats = await harness.store.statistics()
    assert (stats.size, stats.replayed, stats.purged) == (1, 1, 1)
    assert stats.by_event_type == {"order.paid": 1}
    assert set(stats.as_dict()) == {
        "size",
        "by_subscriber",
        "by_event_type",
        "added",
        "replayed",
        "purged",
    }


# ---------------------------------------------------------------------------- bus only


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_a_bus_entry_whose_subscription_is_gone_stays(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with AsyncExitStack() as stack:
        log = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('dlq')}/triotok.db"
            log = DurableDeadLetterLog(
                await stack.enter_async_context(open_store(url)), registry=REGISTRY
            )
        system = await stack.enter_async_context(open_test_system())
        bus = await stack.enter_async_context(open_test_bus(system, dead_letters=log))
        ref = await system.spawn(Recorder, [], Switch(), name="r")
        await bus.subscribe("*", ref)
        await bus.deliver(env(ProductCreated("k", 1)))
        await bus.unsubscribe("*", ref)
        [entry] = await bus.dead_letters.list()
        with pytest.raises(ConflictError):
            await bus.dead_letters.replay(entry.id)
        assert await bus.dead_letters.replay_all() == 0
        assert await bus.dead_letters.list() == [entry]


async def test_the_durable_bus_log_survives_a_restart_and_shares_the_table(
    store_url: str,
) -> None:
    async with open_store(store_url) as db, open_test_system() as system:
        async with open_test_bus(
            system, dead_letters=DurableDeadLetterLog(db, registry=REGISTRY)
        ) as bus:
            ref = await system.spawn(Recorder, [], Switch(), name="r")
            await bus.subscribe("*", ref, group="g")
            await bus.deliver(env(ProductCreated("k", 1)))
            await bus.deliver(env(ProductCreated("k", 1)))  # the same event may fail again
        tree_view = bus.dead_letters.snapshot()
        assert (tree_view.size, tree_view.by_subscriber) == (2, {SUBSCRIBER: 2})
    async with open_store(store_url) as db:
        # A new process: the entries are still there, apart from the outbox's.
        log = DurableDeadLetterLog(db, registry=REGISTRY)
        outbox = EventDeadLetters(db, registry=REGISTRY)
        async with open_test_system() as system, open_test_bus(system, dead_letters=log) as bus:
            entries = await bus.dead_letters.list(group="g")
            assert [(e.source, e.group, e.subscriber) for e in entries] == [
                ("bus", "g", SUBSCRIBER)
            ] * 2
            assert await outbox.count() == 0
            with pytest.raises(NotFound):
                await outbox.get(entries[0].id)  # the other source's rows are not its own
            assert (await bus.dead_letters.statistics()).size == 2
