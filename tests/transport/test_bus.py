"""The event bus: routing by pattern, groups, per-key order, overflow, strict mode, ctx.publish."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotok import Actor
from triotok.actors import ActorCrashed, ActorError, ActorStopped, Mailbox, MailboxFull, Overflow
from triotok.supervision import SupervisorSpec
from triotok.testing import open_test_system
from triotok.transport import (
    BusActor,
    Envelope,
    EventBus,
    InvalidConfig,
    SchemaError,
    TransientError,
)
from triotok.transport._routing import key_hash

from .test_bus_support import (
    NO_JITTER,
    REGISTRY,
    OrderPaid,
    ProductCreated,
    ProductDeleted,
    Recorder,
    Seen,
    env,
    handled,
    open_bus,
)

# ---------------------------------------------------------------------------- routing


async def test_patterns_and_star_route_events(autojump_clock: MockClock) -> None:
    logs: dict[str, list[Seen]] = {"products": [], "everything": [], "paid": []}
    async with open_test_system() as system, open_bus(system) as bus:
        routes = (("products", "product.*"), ("everything", "*"), ("paid", "order.paid"))
        for name, pattern in routes:
            ref = await system.spawn(Recorder, logs[name], name=name)
            await bus.subscribe(pattern, ref)
        await bus.publish(env(ProductCreated("p-1", 1)))
        await bus.publish(env(ProductDeleted("p-1", 2)))
        await bus.publish(env(OrderPaid("o-1", 3)))
        await system.settle()
    assert [s.n for s in logs["products"]] == [1, 2]
    assert [s.n for s in logs["everything"]] == [1, 2, 3]
    assert [s.n for s in logs["paid"]] == [3]


async def test_an_event_without_subscribers_goes_nowhere(autojump_clock: MockClock) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        await bus.deliver(env(ProductCreated("p-1", 1)))
        assert bus.statistics().delivered == 1
        assert bus.statistics().handled == 0


@pytest.mark.parametrize("pattern", ["", "Product.*", "a..b", ".a", "a.", "order.[paid]", 5, "a b"])
async def test_invalid_patterns_are_refused(autojump_clock: MockClock, pattern: Any) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, [], name="r")
        with pytest.raises(InvalidConfig, match="pattern"):
            await bus.subscribe(pattern, ref)


async def test_subscribers_must_be_actors(autojump_clock: MockClock) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        sup = await system.spawn_supervisor(SupervisorSpec("sup"))
        with pytest.raises(InvalidConfig, match="ref"):
            await bus.subscribe("*", sup)
        with pytest.raises(InvalidConfig, match="ref"):
            await bus.subscribe("*", "not a ref")  # type: ignore[arg-type]  # checked at run time
        ref = await system.spawn(Recorder, [], name="r")
        with pytest.raises(InvalidConfig, match="group"):
            await bus.subscribe("*", ref, group="no/slash")
        with pytest.raises(InvalidConfig, match="lanes"):
            await bus.subscribe("*", ref, lanes=0)


async def test_subscribing_twice_is_a_no_op(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, log, name="r")
        first = await bus.subscribe("product.*", ref)
        assert await bus.subscribe("product.*", ref) == first
        assert first.path == "/test/bus/sub-1-r"
        assert first.subscribers == ("/test/r",)
        await bus.deliver(env(ProductCreated("p", 1)))
    assert len(log) == 1


async def test_unsubscribe_stops_delivery(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, log, name="r")
        info = await bus.subscribe("product.*", ref)
        await bus.deliver(env(ProductCreated("p", 1)))
        assert await bus.unsubscribe("product.*", ref)
        assert not await bus.unsubscribe("product.*", ref)
        assert not await bus.unsubscribe("order.*", ref)
        await bus.deliver(env(ProductCreated("p", 2)))
        await system.settle()
        assert bus.subscriptions() == []
        assert [n["path"] for n in system.nodes()].count(info.path) == 0
    assert [s.n for s in log] == [1]


# ---------------------------------------------------------------------------- groups


async def test_a_group_gets_one_delivery_per_event_and_keeps_keys_on_one_member(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        refs = [await system.spawn(Recorder, log, name=f"w{i}") for i in range(3)]
        for ref in refs:
            await bus.subscribe("product.*", ref, group="workers")
        [info] = bus.subscriptions()
        assert info.group == "workers"
        assert info.subscribers == ("/test/w0", "/test/w1", "/test/w2")
        for n in range(60):
            await bus.publish(env(ProductCreated(f"k{n % 12}", n)))
        await system.settle()
    assert sorted(s.n for s in log) == list(range(60))  # each event exactly once
    members: dict[str, set[str]] = defaultdict(set)
    for seen in log:
        members[seen.key].add(seen.path)
    assert all(len(paths) == 1 for paths in members.values())  # one member per key
    assert len({p for paths in members.values() for p in paths}) > 1  # and the load is shared


async def test_two_groups_and_a_plain_subscriber_each_get_every_event(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        for group in ("g1", "g2"):
            for i in range(2):
                ref = await system.spawn(Recorder, log, name=f"{group}-{i}")
                await bus.subscribe("*", ref, group=group)
        solo = await system.spawn(Recorder, log, name="solo")
        await bus.subscribe("*", solo)
        for n in range(10):
            await bus.publish(env(OrderPaid(f"o{n}", n)))
        await system.settle()
    by_target: dict[str, list[int]] = defaultdict(list)
    for seen in log:
        by_target[seen.path.split("/")[-1].split("-")[0]].append(seen.n)
    assert sorted(by_target["g1"]) == list(range(10))
    assert sorted(by_target["g2"]) == list(range(10))
    assert sorted(by_target["solo"]) == list(range(10))


async def test_members_leaving_a_group_hand_their_keys_over(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        a = await system.spawn(Recorder, log, name="a")
        b = await system.spawn(Recorder, log, name="b")
        await bus.subscribe("*", a, group="g")
        await bus.subscribe("*", b, group="g")
        with pytest.raises(InvalidConfig, match="mailbox"):
            await bus.subscribe("*", b, group="g", mailbox=Mailbox(capacity=3))
        assert await bus.unsubscribe("*", a, group="g")
        for n in range(10):
            await bus.publish(env(OrderPaid(f"o{n}", n)))
        await system.settle()
        assert {s.path for s in log} == {"/test/b"}
        assert await bus.unsubscribe("*", b, group="g")
        assert bus.subscriptions() == []


# ---------------------------------------------------------------------------- order


class Dawdler(Recorder):
    """Takes a random (virtual) while per event, so concurrent lanes interleave."""

    async def receive(self, message: Any) -> Any:
        await trio.sleep(random.Random(message.payload.n).random() / 10)
        return await super().receive(message)


def _assert_per_key_order(log: list[Seen]) -> None:
    per_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seen in handled(log):
        per_key[seen.path, seen.key].append(seen.n)
    for numbers in per_key.values():
        assert numbers == sorted(numbers)


async def test_per_key_order_with_concurrent_publishers(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        solo = await system.spawn(Dawdler, log, name="solo")
        await bus.subscribe("product.*", solo, lanes=4)
        for i in range(3):
            member = await system.spawn(Dawdler, log, name=f"m{i}")
            await bus.subscribe("product.*", member, group="g", lanes=4)

        async def publisher(p: int) -> None:
            # Each publisher owns some keys; sequence numbers grow per publisher.
            for n in range(30):
                await bus.publish(env(ProductCreated(f"p{p}-k{n % 3}", p * 1000 + n)))

        async with trio.open_nursery() as nursery:
            for p in range(4):
                nursery.start_soon(publisher, p)
        await system.advance(60)
    assert len([s for s in log if s.path == "/test/solo"]) == 120
    assert len([s for s in log if s.path != "/test/solo"]) == 120
    _assert_per_key_order(log)


async def test_per_key_order_holds_under_retries(autojump_clock: MockClock) -> None:
    log: list[Seen] = []

    def flaky(envelope: Envelope) -> BaseException | None:
        # Every third event fails twice before it goes through.
        if envelope.payload.n % 3 == 0 and envelope.retry_count < 2:
            return TransientError("not yet")
        return None

    # Two keys on each of the two lanes.
    by_lane: dict[int, list[str]] = defaultdict(list)
    for i in range(100):
        by_lane[key_hash(env(ProductCreated(f"k{i}", 0))) % 2].append(f"k{i}")
    keys = by_lane[0][:2] + by_lane[1][:2]
    async with open_test_system(intensity=1000) as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, log, flaky, name="r")
        await bus.subscribe("product.*", ref, lanes=2)
        for n in range(24):
            await bus.publish(env(ProductCreated(keys[n % 4], n)))
        await system.advance(10)
        assert bus.statistics().in_flight == 0
    assert sorted(s.n for s in handled(log)) == list(range(24))
    _assert_per_key_order(log)
    # A key in backoff holds up only its lane: some later event of another
    # key was handled before the first retried event went through.
    order = [s.n for s in handled(log)]
    assert order != sorted(order)


async def test_the_ordering_key_comes_from_key_aggregate_id_or_correlation() -> None:
    from triotok.transport import ordering_key

    assert ordering_key(env(ProductCreated("k1", 1))) == ("acme", "k1")
    assert ordering_key(env(OrderPaid("o1", 1), tenant=None)) == (None, "o1")
    from .strategies import REGISTRY as OTHER
    from .strategies import Pinged

    envelope = Envelope.new(Pinged(1, "x"), registry=OTHER)
    assert ordering_key(envelope) == (None, str(envelope.correlation_id))


# ---------------------------------------------------------------------------- overflow


async def _held_subscription(
    system: Any, bus: EventBus, log: list[Seen], gate: trio.Event, overflow: Overflow
) -> None:
    """A subscriber stuck on ``gate`` behind a one-lane subscription with a 2-slot mailbox.

    After 4 events: #1 at the subscriber, #2 waiting for the lane, #3 and #4
    in the mailbox, which is then full.
    """
    ref = await system.spawn(Recorder, log, None, gate, name="slow")
    await bus.subscribe("*", ref, lanes=1, mailbox=Mailbox(capacity=2, overflow=overflow))
    for n in range(1, 5):
        await bus.publish(env(ProductCreated("k", n)))
        await trio.testing.wait_all_tasks_blocked()


async def test_drop_new_loses_events_to_the_actor_dead_letters(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    async with open_test_system() as system, open_bus(system) as bus:
        await _held_subscription(system, bus, log, gate, Overflow.DROP_NEW)
        await bus.publish(env(ProductCreated("k", 5)))
        # A waiting deliver returns at once too: the subscription chose to drop it.
        await bus.deliver(env(ProductCreated("k", 6)))
        letters = [d for d in system.dead_letters.recent() if d.reason == "mailbox_full"]
        assert [d.message.envelope.payload.n for d in letters] == [5, 6]
        assert letters[0].recipient == "/test/bus/sub-1-slow"
        gate.set()
        await system.settle()
        assert bus.statistics().dropped == 2
        assert bus.statistics().handled == 4
    assert [s.n for s in log] == [1, 2, 3, 4]


async def test_drop_old_drops_the_oldest_queued_event(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    async with open_test_system() as system, open_bus(system) as bus:
        await _held_subscription(system, bus, log, gate, Overflow.DROP_OLD)
        await bus.publish(env(ProductCreated("k", 5)))
        gate.set()
        await system.settle()
    assert [s.n for s in log] == [1, 2, 4, 5]


async def test_block_gives_backpressure(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    published = trio.Event()
    async with open_test_system() as system, open_bus(system) as bus:
        await _held_subscription(system, bus, log, gate, Overflow.BLOCK)

        async def publish_fifth() -> None:
            await bus.publish(env(ProductCreated("k", 5)))
            published.set()

        system.start_soon(publish_fifth)
        await trio.testing.wait_all_tasks_blocked()
        assert not published.is_set()  # the publisher waits for room
        gate.set()
        await system.settle()
        assert published.is_set()
    assert [s.n for s in log] == [1, 2, 3, 4, 5]


async def test_fail_refuses_with_mailbox_full(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    async with open_test_system() as system, open_bus(system) as bus:
        await _held_subscription(system, bus, log, gate, Overflow.FAIL)
        with pytest.raises(MailboxFull):
            await bus.publish(env(ProductCreated("k", 5)))
        gate.set()
        await system.settle()
    assert [s.n for s in log] == [1, 2, 3, 4]


# ---------------------------------------------------------------------------- deliver contract


async def test_deliver_waits_until_every_subscription_is_done(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    done = trio.Event()
    async with open_test_system() as system, open_bus(system) as bus:
        slow = await system.spawn(Recorder, log, None, gate, name="slow")
        fast = await system.spawn(Recorder, log, name="fast")
        await bus.subscribe("*", slow)
        await bus.subscribe("*", fast)

        async def deliver() -> None:
            await bus.deliver(env(ProductCreated("k", 1)))
            done.set()

        system.start_soon(deliver)
        await system.settle()
        assert [s.path for s in log] == ["/test/fast"]
        assert not done.is_set()
        gate.set()
        await system.settle()
        assert done.is_set()


async def test_deliver_raises_once_the_bus_is_gone(autojump_clock: MockClock) -> None:
    async with open_test_system() as system:
        async with open_bus(system) as bus:
            await bus.subscribe("*", await system.spawn(Recorder, [], name="r"))
        assert not bus.running
        with pytest.raises(ActorStopped):
            await bus.deliver(env(ProductCreated("k", 1)))


async def test_a_waiting_deliver_raises_when_the_bus_stops_first(
    autojump_clock: MockClock,
) -> None:
    gate = trio.Event()
    errors: list[BaseException] = []
    async with open_test_system() as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, [], None, gate, name="slow"))

        async def deliver() -> None:
            try:
                await bus.deliver(env(ProductCreated("k", 1)))
            except ActorStopped as exc:
                errors.append(exc)

        system.start_soon(deliver)
        await system.settle()
        await system.ref("/test/bus").stop()
        await system.settle()
        assert bus.statistics().abandoned == 1
        assert bus.statistics().in_flight == 0
    assert len(errors) == 1


async def test_a_restarted_bus_actor_respawns_its_subscriptions(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, name="r"))
        with pytest.raises(ActorCrashed):
            await system.ref("/test/bus").ask("no such message")
        await system.settle()
        assert system.ref("/test/bus").statistics().restarts == 1
        await bus.deliver(env(ProductCreated("k", 1)))
        assert [s.n for s in log] == [1]


async def test_the_bus_runs_under_any_supervisor(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    bus = EventBus(registry=REGISTRY, retry=NO_JITTER)
    async with open_test_system() as system:
        await system.spawn_supervisor(SupervisorSpec("transport", children=[bus.child_spec()]))
        assert bus.path == "/test/transport/bus"
        await bus.subscribe("*", await system.spawn(Recorder, log, name="r"))
        await bus.publish(env(ProductCreated("k", 1)))
        await system.settle()
        [node] = [n for n in system.nodes() if n["path"] == "/test/transport/bus"]
        assert node["components"]["bus"]["handled"] == 1
        assert [c["name"] for c in node["children"]] == ["sub-1-r"]
        await bus.aclose()
    assert [s.n for s in log] == [1]


async def test_subscribing_before_the_bus_starts(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    bus = EventBus(registry=REGISTRY)
    async with open_test_system() as system:
        ref = await system.spawn(Recorder, log, name="r")
        info = await bus.subscribe("*", ref)
        assert info.path == ""  # recorded; spawned when the bus starts
        await system.spawn(BusActor, bus, name="bus")
        await bus.deliver(env(ProductCreated("k", 1)))
        assert bus.subscriptions()[0].path == "/test/bus/sub-1-r"
        await bus.aclose()
    assert len(log) == 1


# ---------------------------------------------------------------------------- strict mode


async def test_strict_mode_refuses_an_unencodable_event(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        assert bus.strict  # taken from the test system
        await bus.subscribe("*", await system.spawn(Recorder, log, name="r"))
        bad = env(ProductCreated("k", "one"))  # type: ignore[arg-type]  # the point of the test
        with pytest.raises(SchemaError, match="expected int"):
            await bus.publish(bad)
        await system.settle()
    assert log == []


async def test_strict_mode_gives_each_subscription_its_own_copy(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        for name in ("a", "b"):
            await bus.subscribe("*", await system.spawn(Recorder, log, name=name))
        sent = env(ProductCreated("k", 1))
        await bus.deliver(sent)
    first, second = (s.envelope for s in log)
    assert first == second == sent
    assert first is not second
    assert first is not sent


async def test_without_strict_mode_envelopes_pass_unencoded(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system(strict=False) as system, open_bus(system) as bus:
        assert not bus.strict
        await bus.subscribe("*", await system.spawn(Recorder, log, name="r"))
        sent = env(ProductCreated("k", 1))
        await bus.deliver(sent)
    assert log[0].envelope is sent


# ---------------------------------------------------------------------------- ctx.publish


class Emitter(Actor):
    """Publishes a product.created for every message; also subscribed to it itself."""

    def __init__(self, log: list[Envelope]) -> None:
        self.log = log

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Envelope):
            self.log.append(message)
            return None
        if message == "payload":  # a bare payload: the bus wraps it
            await self.ctx.publish(ProductCreated("k", 0))
            return None
        await self.ctx.publish(
            Envelope.new(ProductCreated("k", message), actor_id=self.ctx.path, registry=REGISTRY)
        )
        return None


async def test_ctx_publish_goes_through_the_bus(autojump_clock: MockClock) -> None:
    mine: list[Envelope] = []
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        emitter = await system.spawn(Emitter, mine, name="emitter")
        await bus.subscribe("product.*", emitter)  # its own events: must not deadlock
        await bus.subscribe("product.*", await system.spawn(Recorder, log, name="r"))
        await emitter.ask(7)
        await system.settle()
        await emitter.ask("payload")
        await system.settle()
    assert [s.n for s in log] == [7, 0]
    assert [s.envelope.actor_id for s in log] == ["/test/emitter", "/test/emitter"]
    assert [e.payload.n for e in mine] == [7, 0]


async def test_ctx_publish_is_detached_with_the_bus(autojump_clock: MockClock) -> None:
    async with open_test_system() as system:
        async with open_bus(system):
            assert system.system.runtime.publisher is not None
        assert system.system.runtime.publisher is None


class Publisher(Actor):
    """Publishes what it is asked to: a failure reaches the asker as ActorCrashed."""

    async def receive(self, message: Any) -> Any:
        await self.ctx.publish(message)


@dataclass(frozen=True)
class Unregistered:
    n: int


async def test_ctx_publish_needs_a_bus_and_a_registered_payload(autojump_clock: MockClock) -> None:
    """What docs/reference/events.md says of ``ctx.publish`` besides the happy path."""
    async with open_test_system() as system:
        ref = await system.spawn(Publisher, name="publisher")
        with pytest.raises(ActorCrashed) as no_bus:
            await ref.ask(ProductCreated("k", 0))
        assert type(no_bus.value.cause) is ActorError
        async with open_bus(system) as bus:
            with pytest.raises(ActorCrashed) as unknown:
                await ref.ask(Unregistered(1))
            assert isinstance(unknown.value.cause, SchemaError)
            assert bus.statistics().published == 0


class RelayedTransport:
    """A durable-style transport: publish only records; a relay calls the sinks later."""

    def __init__(self) -> None:
        self.sinks: dict[str, Any] = {}
        self.rows: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> None:
        self.rows.append(envelope)
        await trio.lowlevel.checkpoint()

    async def subscribe(self, name: str, sink: Any) -> None:
        self.sinks[name] = sink
        await trio.lowlevel.checkpoint()

    async def unsubscribe(self, name: str) -> None:
        self.sinks.pop(name, None)
        await trio.lowlevel.checkpoint()


async def test_on_a_durable_transport_the_sink_waits_for_handling(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []
    gate = trio.Event()
    relayed = trio.Event()
    transport = RelayedTransport()
    async with open_test_system() as system, open_bus(system, transport=transport) as bus:
        assert bus.sink_waits
        await bus.subscribe("*", await system.spawn(Recorder, log, None, gate, name="slow"))
        await bus.publish(env(ProductCreated("k", 1)))
        assert log == []  # only recorded

        async def relay() -> None:
            for row in transport.rows:
                await transport.sinks["bus"](row)
            relayed.set()

        system.start_soon(relay)
        await system.settle()
        assert not relayed.is_set()  # the row is not done while a handler still owes it
        gate.set()
        await system.settle()
        assert relayed.is_set()
    assert len(log) == 1
    assert transport.sinks == {}  # the bus unsubscribed when it closed
