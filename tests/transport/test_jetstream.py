"""L2 on a real ``nats-server -js``: de-duplication, outages, replay, retention, new groups.

Each test has a real SQLite store with its outbox and inbox, the relay
forwarding to the stream, and a bus whose group reads its durable consumer.
The effects of the group are rows written by an :class:`InboxConsumer` in
the transaction of its inbox record, so "exactly once" is counted on rows.
Waiting is on the outcome (rows, counters), bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import stream_config
from triotok.actors import Actor
from triotok.resilience import Backoff
from triotok.store import (
    GetStatistics,
    InboxConsumer,
    NotFound,
    OutboxRelay,
    OutboxTransport,
    Store,
    UnitOfWork,
    open_store,
)
from triotok.testing import NatsServer, open_test_system
from triotok.transport import (
    Envelope,
    EventBus,
    InvalidConfig,
    JetStreamConfig,
    JetStreamTransport,
    StreamUnavailable,
    event,
    open_event_bus,
    parse_events_url,
)
from triotok.transport._stream_names import consumer_name, filter_subject, subject_for

pytestmark = pytest.mark.nats

TIMEOUT = 30
EFFECTS = "CREATE TABLE effects (event_id TEXT NOT NULL, k TEXT NOT NULL, n INTEGER NOT NULL)"
MODEL = "CREATE TABLE model (k TEXT PRIMARY KEY, total INTEGER NOT NULL, last INTEGER NOT NULL)"


@event("test.stream.counted", version=1)
@dataclass(frozen=True)
class Counted:
    key: str
    n: int


def env(key: str, n: int) -> Envelope:
    return Envelope.new(Counted(key, n), tenant_id="acme")


async def project(tx: UnitOfWork, envelope: Envelope) -> None:
    """The group's effect (a row per handling) and a read model (totals per key)."""
    payload: Counted = envelope.payload
    await tx.execute(
        "INSERT INTO effects (event_id, k, n) VALUES ($1, $2, $3)",
        str(envelope.id),
        payload.key,
        payload.n,
    )
    await tx.execute(
        "INSERT INTO model (k, total, last) VALUES ($1, $2, $2) ON CONFLICT (k) DO UPDATE"
        " SET total = model.total + excluded.total, last = excluded.last",
        payload.key,
        payload.n,
    )


class Handler(Actor):
    """Applies each event through the inbox; counts every hand-over (duplicates too)."""

    def __init__(self, inbox: InboxConsumer, seen: list[int]) -> None:
        self._inbox = inbox
        self._seen = seen

    async def receive(self, message: Any) -> None:
        self._seen.append(message.payload.n)
        await self._inbox(message)


@dataclass
class Node:
    store: Store
    stream: JetStreamTransport
    bus: EventBus
    system: Any
    seen: list[int]
    relay: Any

    async def publish(self, *numbers: int, key: str = "k") -> None:
        for n in numbers:
            async with self.store.transaction() as tx:
                await tx.publish(env(key, n))

    async def effects(self) -> list[int]:
        rows = await self.store.fetch("SELECT n FROM effects ORDER BY n")
        return [int(row["n"]) for row in rows]

    async def subscribe(self, group: str) -> None:
        inbox = InboxConsumer(self.store, group, project)
        ref = await self.system.spawn(Handler, inbox, self.seen, name=f"on-{group}")
        await self.bus.subscribe("test.stream.*", ref, group=group)


@asynccontextmanager
async def open_node(
    tmp_path: Path, config: JetStreamConfig, *, group: str | None = "g", sink: Any = None
) -> AsyncIterator[Node]:
    async with AsyncExitStack() as stack:
        # The store outlives the actors that use it.
        store = await stack.enter_async_context(open_store(f"sqlite:///{tmp_path}/node.db"))
        system = await stack.enter_async_context(open_test_system(intensity=1000))
        if not await store.fetchval("SELECT count(*) FROM sqlite_master WHERE name = 'effects'"):
            await store.execute(EFFECTS)
            await store.execute(MODEL)
        outbox = OutboxTransport(store)
        stream = JetStreamTransport(config, publisher=outbox.publish)
        await system.spawn(stream.child_spec().factory, stream, name="stream")
        bus = await stack.enter_async_context(open_event_bus(system, transport=stream))
        relay = await spawn_relay(system, store, sink or stream.forward)
        node = Node(store, stream, bus, system, [], relay)
        if group is not None:
            await node.subscribe(group)
        yield node


async def spawn_relay(system: Any, store: Store, sink: Any, name: str = "relay") -> Any:
    def relay() -> OutboxRelay:
        return OutboxRelay(
            store,
            sink,
            poll_interval=0.05,
            fallback_interval=0.05,
            backoff=Backoff(min=0.01, max=0.05, jitter=0),
            unavailable_backoff=Backoff(min=0.02, max=0.2, jitter=0),
        )

    return await system.spawn(relay, name=name, shutdown=0)


async def eventually(check: Callable[[], Any]) -> None:
    """Wait for ``check()`` (sync or async) to be true: the outcome crosses a socket."""
    with trio.fail_after(TIMEOUT):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            with trio.move_on_after(0.02):
                await trio.Event().wait()  # a tick: no event announces a server's ack


async def pending_rows(store: Store) -> int:
    return int(await store.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"))


async def outbox_empty(store: Store) -> bool:
    return await pending_rows(store) == 0


# --------------------------------------------------------------------------- names


def test_subjects_filters_and_consumer_names() -> None:
    assert subject_for("triotok", "acme", "product.created") == "triotok.acme.product.created"
    assert subject_for("triotok", None, "system.started") == "triotok._.system.started"
    assert filter_subject("p", "order.paid") == "p.*.order.paid"
    assert filter_subject("p", "order.*") == "p.*.order.>"
    assert filter_subject("p", "order.pa?d") == "p.*.order.>"
    assert filter_subject("p", "ord*") == "p.>"
    assert filter_subject("p", "*") == "p.>"
    assert consumer_name("search", "*") == consumer_name("search", "*")
    assert consumer_name("search", "*") != consumer_name("search", "product.*")
    assert consumer_name("a.b", "*").startswith("a_b-")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"url": "http://x"}, "events_url"),
        ({"stream": "a.b"}, "stream"),
        ({"max_age": timedelta(0)}, "max_age"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"ack_wait": -1.0}, "ack_wait"),
        ({"new_group_start": "old"}, "new_group_start"),
    ],
)
def test_bad_stream_settings_are_refused(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        JetStreamConfig(**{"url": "nats://127.0.0.1:4222", **options})
    assert caught.value.field == field


def test_events_urls() -> None:
    assert parse_events_url("") is None
    assert parse_events_url("outbox") is None
    assert parse_events_url("nats://a:1,nats://b:2") == "nats://a:1,nats://b:2"
    for bad in ("postgresql://x", "nats://", "nats://h:notaport"):
        with pytest.raises(InvalidConfig):
            parse_events_url(bad)


# --------------------------------------------------------------------------- point 1


async def test_a_relay_killed_between_publish_and_mark_is_deduplicated_by_the_server(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    config = stream_config(nats_server)
    published = trio.Event()

    async with open_node(tmp_path, config, sink=None) as node:
        await node.relay.stop()  # replaced by one that dies right after the server's ack

        async def forward_then_die(envelope: Envelope) -> None:
            await node.stream.forward(envelope)
            published.set()
            await trio.sleep_forever()  # killed here: the row is never marked

        dying = await spawn_relay(node.system, node.store, forward_then_die, "dying")
        await node.publish(1)
        with trio.fail_after(TIMEOUT):
            await published.wait()
        await dying.stop()  # shutdown=0: cancelled in the sink, before any mark
        assert await pending_rows(node.store) == 1
        await spawn_relay(node.system, node.store, node.stream.forward, "again")
        await eventually(lambda: outbox_empty(node.store))
        await eventually(lambda: node.effects())
        state = await node.stream.stream_state()
        stats = node.stream.statistics()
        effects = await node.effects()
    assert (stats.published, stats.duplicates) == (2, 1)  # published twice, dropped once
    assert state.messages == 1
    assert node.seen == [1]
    assert effects == [1]


# --------------------------------------------------------------------------- point 4


async def test_an_outage_loses_nothing_and_delivers_everything_once(
    tmp_path: Path, own_nats_server: NatsServer
) -> None:
    server = own_nats_server
    async with open_node(tmp_path, stream_config(server)) as node:
        await node.publish(*range(10))
        await eventually(lambda: len(node.seen) >= 10)
        server.stop()
        await eventually(lambda: not node.stream.connected)
        await node.publish(*range(10, 30))  # committed while the stream is away
        relay_stats = await node.relay.ask(GetStatistics())
        await eventually(lambda: not node.stream.statistics().available)
        assert await pending_rows(node.store) > 0  # kept in the outbox
        server.start()
        await eventually(lambda: outbox_empty(node.store))
        await eventually(lambda: len(set(node.seen)) >= 30)
        await eventually(lambda: node.stream.statistics().lag == 0)
        after = await node.relay.ask(GetStatistics())
        effects = await node.effects()
    assert relay_stats.dead_lettered == 0
    assert after.dead_lettered == 0
    assert after.sink_unavailable >= 1  # it backed off rather than failing rows
    assert effects == list(range(30))  # each effect exactly once


async def test_a_node_starts_while_the_server_is_down(
    tmp_path: Path, own_nats_server: NatsServer
) -> None:
    server = own_nats_server
    config = stream_config(server)
    server.stop()
    async with open_node(tmp_path, config) as node:
        await node.publish(1, 2, 3)
        assert not node.stream.statistics().available
        server.start()
        await eventually(lambda: len(node.seen) >= 3)
    assert sorted(node.seen) == [1, 2, 3]


async def test_retention_limits_are_applied_to_the_stream(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    config = stream_config(nats_server, max_age=timedelta(hours=1), max_msgs=5)
    async with open_node(tmp_path, config) as node:
        await node.publish(*range(8))
        await eventually(lambda: len(node.seen) >= 8)
        state = await node.stream.stream_state()
        await eventually(lambda: node.stream.statistics().state is not None)
    assert (state.max_age_seconds, state.max_msgs) == (3600.0, 5)
    assert state.messages == 5
    assert state.first_seq == 4


# --------------------------------------------------------------------------- point 3


async def test_replay_from_a_sequence_rebuilds_the_read_model(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with open_node(tmp_path, stream_config(nats_server)) as node:
        for n in range(40):
            await node.publish(n, key=f"k{n % 4}")
        await eventually(lambda: len(node.seen) >= 40)
        live = await node.store.fetch("SELECT k, total, last FROM model ORDER BY k")
        # Throw the read model and its inbox away, then rebuild it from the stream.
        async with node.store.transaction() as tx:
            await tx.execute("DELETE FROM model")
            await tx.execute("DELETE FROM effects")
            await tx.execute("DELETE FROM inbox WHERE consumer = 'g'")
        started = await node.stream.replay("g", from_seq=1)
        assert started.pending == 40
        await eventually(lambda: len(node.seen) >= 80)
        await eventually(lambda: node.effects())
        await eventually(lambda: node.stream.statistics().lag == 0)
        rebuilt = await node.store.fetch("SELECT k, total, last FROM model ORDER BY k")
    assert [tuple(r) for r in rebuilt] == [tuple(r) for r in live]
    assert len(live) == 4


async def test_replay_since_a_time_and_the_inbox_keeps_effects_single(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with open_node(tmp_path, stream_config(nats_server)) as node:
        await node.publish(*range(5))
        await eventually(lambda: len(node.seen) >= 5)
        since = datetime.now(UTC)
        await node.publish(*range(5, 12))
        await eventually(lambda: len(node.seen) >= 12)
        started = await node.stream.replay("g", since=since)
        assert started.pending == 7
        await eventually(lambda: len(node.seen) >= 19)
        await eventually(lambda: node.stream.statistics().lag == 0)
        with pytest.raises(NotFound):
            await node.stream.replay("nobody", from_seq=1)
        with pytest.raises(InvalidConfig):
            await node.stream.replay("g")
        effects = await node.effects()
    assert sorted(node.seen[12:]) == list(range(5, 12))  # only what came after ``since``
    assert effects == list(range(12))  # handled again, applied once


@pytest.mark.parametrize(("start", "expected"), [("all", [1, 2, 3, 4]), ("new", [4])])
async def test_where_a_new_group_starts(
    tmp_path: Path, nats_server: NatsServer, start: str, expected: list[int]
) -> None:
    config = stream_config(nats_server, new_group_start=start)
    async with open_node(tmp_path, config, group="old") as node:
        await node.publish(1, 2, 3)
        await eventually(lambda: len(node.seen) >= 3)
        node.seen.clear()
        await node.subscribe("fresh")  # e.g. a new read model
        await node.publish(4)
        await eventually(lambda: 4 in node.seen and node.seen.count(4) == 2)
        await eventually(lambda: node.stream.statistics().lag == 0)
    fresh = [n for n in node.seen if n != 4] + [4]
    assert sorted(fresh) == expected


# --------------------------------------------------------------------------- statistics


async def test_statistics_show_the_stream_and_the_groups(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with open_node(tmp_path, stream_config(nats_server)) as node:
        await node.publish(*range(3))
        await eventually(lambda: len(node.seen) >= 3)
        await eventually(
            lambda: (
                (s := node.stream.statistics()).state is not None
                and s.state["messages"] == 3
                and s.consumers[0].server is not None
                and s.consumers[0].server["ack_floor"] == 3
            )
        )
        stats = node.stream.statistics().as_dict()
        tree = node.system.tree(prefix=f"/{node.system.name}/stream")
    [consumer] = stats["consumers"]
    assert consumer["group"] == "g"
    assert consumer["pattern"] == "test.stream.*"
    assert consumer["server"]["lag"] == 0
    assert consumer["acked"] == 3
    assert stats["connected"]
    assert stats["available"]
    assert stats["lag"] == 0
    assert tree["components"]["stream"]["state"]["last_seq"] == 3


async def test_forward_without_a_server_raises_stream_unavailable(
    own_nats_server: NatsServer,
) -> None:
    stream = JetStreamTransport(stream_config(own_nats_server))
    with pytest.raises(StreamUnavailable):
        await stream.forward(env("k", 1))  # no client actor: never connected
    assert stream.statistics().available is False


async def test_an_undecodable_message_is_set_aside_and_the_next_ones_flow(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    config = stream_config(nats_server)
    async with open_node(tmp_path, config) as node:
        await node.stream.wait_connected()
        admin = node.stream._admin  # the node's own connection: publish raw bytes
        assert admin is not None
        subject = subject_for(config.subject_prefix, "acme", "test.stream.counted")
        await admin.aio(admin.js.publish(subject, b"\xff not cbor"))
        await node.publish(7)
        await eventually(lambda: node.seen == [7])
        await eventually(lambda: node.stream.statistics().consumers[0].undecodable == 1)
