"""The outbox relay, the dead-letter table, the L1 transport and the inbox consumer.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture). Waiting is on
events (the sink recorded n envelopes, ``relay.drain()`` returned), bounded by
``trio.fail_after``; the short real intervals only bound how long a poll
takes, no assertion depends on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import trio

from triotok import open_system
from triotok._exceptions import InvalidConfig, NotFound, PermanentError
from triotok.actors import ActorCrashed, ActorRef, UnknownMessage
from triotok.store import (
    EventDeadLetters,
    GetStatistics,
    InboxConsumer,
    OutboxRelay,
    OutboxTransport,
    Store,
    UnitOfWork,
    Wake,
    idempotent,
)
from triotok.supervision import ActorSystem, Backoff
from triotok.transport import Envelope, event

TIMEOUT = 20
FAST = Backoff(min=0.01, max=0.02, jitter=0)


@event("test.relay.happened", version=1)
@dataclass(frozen=True)
class Happened:
    """The payload of the relay tests' events."""

    n: int


def envelope(n: int) -> Envelope:
    return Envelope.new(Happened(n), tenant_id="t1")


class Recorder:
    """A sink that records envelopes and can fail on demand."""

    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self.fail: Callable[[Envelope], BaseException | None] = lambda env: None
        self._changed = trio.Event()

    async def __call__(self, env: Envelope) -> None:
        error = self.fail(env)
        if error is not None:
            raise error
        self.seen.append(env)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.seen) < count:
            await self._changed.wait()

    @property
    def numbers(self) -> list[int]:
        return [env.payload.n for env in self.seen]


async def publish(store: Store, *numbers: int) -> None:
    async with store.transaction() as tx:
        for n in numbers:
            await tx.publish(envelope(n))


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with open_system() as opened:
        yield opened


async def spawn_relay(
    system: ActorSystem, store: Store, sink: Any, *, name: str = "relay", **options: Any
) -> tuple[ActorRef, OutboxRelay]:
    """Spawn a relay with test-friendly intervals; return its ref and the live instance."""
    instances: list[OutboxRelay] = []
    options = {"poll_interval": 0.2, "fallback_interval": 0.2, "backoff": FAST, **options}

    def factory() -> OutboxRelay:
        relay = OutboxRelay(store, sink, node_id=name, **options)
        instances.append(relay)
        return relay

    ref = await system.spawn(factory, name=name)
    return ref, instances[-1]


async def pending(store: Store) -> int:
    return int(await store.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"))


# --------------------------------------------------------------------------- delivery


async def test_committed_events_reach_the_sink_in_order_and_are_marked(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    await publish(store, 1, 2, 3)

    async def rolled_back() -> None:
        async with store.transaction() as tx:
            await tx.publish(envelope(99))
            raise RuntimeError("rolled back: never delivered")

    with pytest.raises(RuntimeError):
        await rolled_back()
    ref, relay = await spawn_relay(system, store, sink, batch_size=2)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(3)
        await publish(store, 4)  # woken by the commit
        await sink.wait_for(4)
        await relay.drain()
    assert sink.numbers == [1, 2, 3, 4]
    assert await pending(store) == 0
    stats = await ref.ask(GetStatistics())
    assert (stats.claimed, stats.delivered, stats.failed, stats.dead_lettered) == (4, 4, 0, 0)
    assert stats.batches >= 3  # 2 + 1 at start, then 1
    assert 0 <= stats.lag_seconds < TIMEOUT  # measured at most once a second
    assert stats.available is True
    assert stats.node_id == "relay"
    [node] = system.tree()["children"]
    assert node["components"]["relay"]["delivered"] == 4


async def test_undecodable_rows_are_dead_lettered_without_crashing(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    async with store.transaction() as tx:
        await tx.publish(envelope(1))
        await tx.publish(b"\xff not cbor", event_id="poison", event_type="test.relay.happened")
        await tx.publish(envelope(2))
    ref, relay = await spawn_relay(system, store, sink)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(2)
        await relay.drain()
    assert sink.numbers == [1, 2]
    [letter] = await EventDeadLetters(store).list()
    assert (letter.event_id, letter.reason, letter.attempts) == ("poison", "undecodable", 1)
    assert letter.error_type == "SchemaError"
    assert letter.envelope is None  # its bytes cannot be decoded
    assert letter.node_id == "relay"
    assert await store.fetchval("SELECT count(*) FROM outbox WHERE event_id = 'poison'") == 0
    stats = await ref.ask(GetStatistics())
    assert (stats.undecodable, stats.dead_lettered) == (1, 1)
    [node] = system.tree()["children"]
    assert node["restarts"] == 0


async def test_a_failing_sink_is_retried_with_backoff_until_it_succeeds(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    calls: list[int] = []

    def flaky(env: Envelope) -> BaseException | None:
        calls.append(env.payload.n)
        return ConnectionError("bus down") if len(calls) <= 2 else None

    sink.fail = flaky
    await publish(store, 7)
    ref, _ = await spawn_relay(system, store, sink)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(1)
    assert calls == [7, 7, 7]
    row = await store.fetchrow("SELECT attempts, last_error FROM outbox")
    assert row is not None
    assert row["attempts"] == 3
    assert row["last_error"] == "ConnectionError: bus down"
    stats = await ref.ask(GetStatistics())
    assert (stats.failed, stats.dead_lettered) == (2, 0)


async def test_after_max_attempts_an_event_is_dead_lettered_then_replayed(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    sink.fail = lambda env: ValueError(f"cannot handle {env.payload.n}")
    await publish(store, 1, 2)
    ref, relay = await spawn_relay(system, store, sink, max_attempts=3)
    dead = EventDeadLetters(store)
    with trio.fail_after(TIMEOUT):
        while await dead.count() < 2:
            await relay.drain()  # each pass retries what became due
    letters = await dead.list()
    assert [(d.reason, d.attempts) for d in letters] == [("max_attempts", 3)] * 2
    assert (letters[0].error_type, letters[0].error_message) == ("ValueError", "cannot handle 1")
    assert await store.fetchval("SELECT count(*) FROM outbox") == 0
    assert (await ref.ask(GetStatistics())).failed == 6
    assert [d.id for d in await dead.list(limit=1, after=letters[0].id)] == [letters[1].id]
    assert await dead.list(event_type="other") == []
    assert (await dead.get(letters[0].id)).as_dict()["payload_bytes"] > 0

    sink.fail = lambda env: None
    await dead.replay(letters[0].id)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(1)
    assert sink.numbers == [1]
    with pytest.raises(NotFound):
        await dead.replay(letters[0].id)
    await dead.purge(letters[1].id)
    with pytest.raises(NotFound):
        await dead.purge(12345)
    assert await dead.count() == 0


async def test_a_permanent_error_dead_letters_at_once(store: Store, system: ActorSystem) -> None:
    sink = Recorder()
    sink.fail = lambda env: PermanentError("malformed order")
    await publish(store, 1)
    _, relay = await spawn_relay(system, store, sink, max_attempts=10)
    with trio.fail_after(TIMEOUT):
        await relay.drain()
    [letter] = await EventDeadLetters(store).list()
    assert (letter.reason, letter.attempts) == ("permanent", 1)


async def test_purge_by_age(store: Store) -> None:
    dead = EventDeadLetters(store)
    await publish(store, 1)
    [row] = await store.claim_outbox("n")
    assert await dead.add(row, "max_attempts", "x" * 5000)
    assert not await dead.add(row, "max_attempts", "again")  # already moved
    [letter] = await dead.list()
    assert len(letter.error_message) == 2000
    assert await dead.purge_where(older_than=timedelta(hours=1)) == 0
    assert await dead.purge_where(older_than=timedelta(seconds=-1)) == 1
    with pytest.raises(InvalidConfig):
        await dead.list(limit=0)
    with pytest.raises(NotFound):
        await dead.get(letter.id)


async def test_two_relays_share_the_outbox_without_duplicates(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    count = 200
    for start in range(0, count, 20):
        await publish(store, *range(start, start + 20))
    _, first = await spawn_relay(system, store, sink, name="relay-a", batch_size=7)
    _, second = await spawn_relay(system, store, sink, name="relay-b", batch_size=7)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(count)
        await first.drain()
        await second.drain()
    assert sorted(sink.numbers) == list(range(count))  # each once
    assert first.statistics().delivered + second.statistics().delivered == count


async def test_delivered_rows_are_pruned_after_the_retention(
    store: Store, system: ActorSystem
) -> None:
    sink = Recorder()
    await publish(store, 1, 2)
    _, relay = await spawn_relay(system, store, sink, retention=timedelta(0), prune_interval=0.01)
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(2)
        # The counter moves once the relay's prune returned, a moment after the rows
        # are gone for every reader: wait for the counter, then look at the rows.
        while relay.statistics().pruned < 2:
            await relay.drain()
    assert relay.statistics().pruned == 2
    assert await store.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_store_handle_is_accepted(store: Store, system: ActorSystem) -> None:
    class Handle:
        async def wait_open(self) -> Store:
            return store

    sink = Recorder()
    await publish(store, 5)
    await spawn_relay(system, Handle(), sink)  # type: ignore[arg-type]  # a StoreSource
    with trio.fail_after(TIMEOUT):
        await sink.wait_for(1)


async def test_messages_and_validation(store: Store, system: ActorSystem) -> None:
    ref, _ = await spawn_relay(system, store, Recorder())
    assert await ref.ask(Wake()) is None
    with pytest.raises(ActorCrashed) as caught:
        await ref.ask("wake")  # the string of old: refused, naming the types it takes
    assert isinstance(caught.value.cause, UnknownMessage)
    assert caught.value.cause.expected == (Wake, GetStatistics)
    assert "unknown message" in str(caught.value)
    for bad in (
        {"batch_size": 0},
        {"lease_seconds": 0},
        {"poll_interval": float("nan")},
        {"retention": timedelta(seconds=-1)},
        {"max_attempts": 0},
    ):
        with pytest.raises(InvalidConfig):
            OutboxRelay(store, Recorder(), **bad)
    with pytest.raises(InvalidConfig):
        OutboxRelay(store, "not callable")  # type: ignore[arg-type]  # checked at run time
    assert ":" in OutboxRelay(store, Recorder()).node_id  # hostname:pid


# --------------------------------------------------------------------------- L1 transport


async def test_outbox_transport_publishes_through_the_outbox_to_subscribers(
    store: Store, system: ActorSystem
) -> None:
    transport = OutboxTransport(store)
    first, second = Recorder(), Recorder()
    await spawn_relay(system, store, transport.deliver)
    await transport.publish(envelope(1))  # no subscriber yet: the relay waits
    await transport.subscribe("first", first)
    await transport.subscribe("second", second)
    with pytest.raises(InvalidConfig, match="already exists"):
        await transport.subscribe("first", first)
    with trio.fail_after(TIMEOUT):
        await first.wait_for(1)
        await second.wait_for(1)
        await transport.unsubscribe("second")
        await transport.unsubscribe("nobody")
        await transport.publish(envelope(2))
        await first.wait_for(2)
    assert first.numbers == [1, 2]
    assert second.numbers == [1]
    stats = transport.statistics()
    assert (stats.subscribers, stats.published, stats.delivered) == (1, 2, 3)


# --------------------------------------------------------------------------- inbox


async def test_inbox_consumer_applies_each_event_once(store: Store) -> None:
    await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")

    @idempotent(store, "bumper")
    async def bump(tx: UnitOfWork, env: Envelope) -> None:
        await tx.execute("UPDATE tenants SET version = version + 1 WHERE id = $1", env.tenant_id)

    first, other = envelope(1), envelope(2)
    await bump(first)
    await bump(first)  # redelivery
    await bump(other)
    assert await store.fetchval("SELECT version FROM tenants") == 3
    stats = bump.statistics()
    assert (stats.applied, stats.duplicates, stats.failed) == (2, 1, 0)
    assert stats.as_dict()["consumer"] == "bumper"


async def test_inbox_consumer_failure_rolls_back_the_inbox_record(store: Store) -> None:
    attempts: list[int] = []

    async def handler(tx: UnitOfWork, env: Envelope) -> None:
        attempts.append(1)
        await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t9", "T")
        if len(attempts) == 1:
            raise ConnectionError("downstream")

    consumer = InboxConsumer(store, "creator", handler)
    env = envelope(1)
    with pytest.raises(ConnectionError):
        await consumer(env)
    await consumer(env)  # not recorded the first time: applied now
    await consumer(env)
    assert len(attempts) == 2
    assert await store.fetchval("SELECT count(*) FROM tenants") == 1
    assert consumer.statistics().failed == 1
    with pytest.raises(InvalidConfig):
        InboxConsumer(store, "bad/name", handler)


async def test_relay_and_inbox_survive_redelivery_of_an_unmarked_batch(
    store: Store, system: ActorSystem
) -> None:
    """A relay that delivered but never marked (crash) leaves the inbox to dedupe."""
    await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")

    @idempotent(store, "bumper")
    async def bump(tx: UnitOfWork, env: Envelope) -> None:
        await tx.execute("UPDATE tenants SET version = version + 1 WHERE id = $1", env.tenant_id)

    await publish(store, 1, 2, 3)
    # A "crashed" relay: claimed with an already expired lease, delivered, never marked.
    for row in await store.claim_outbox("crashed", lease_seconds=-1):
        from triotok.transport import decode

        await bump(decode(row.payload))
    _, relay = await spawn_relay(system, store, bump)
    with trio.fail_after(TIMEOUT):
        await relay.drain()
    assert await pending(store) == 0
    assert await store.fetchval("SELECT version FROM tenants") == 4  # 1 + three events
    assert bump.statistics().duplicates == 3
