"""One bus suite on every transport level: L0 (in memory), L1 (outbox + relay), L2 (JetStream).

The same tests (delivery, ordering, groups, retries, dead letters) run on

* ``L0``: :class:`InMemoryTransport`, the bus publishes straight to its subscriptions;
* ``L1``: a real SQLite outbox, the relay hands committed rows to the bus;
* ``L2``: the same outbox, the relay forwards rows to a real ``nats-server -js``,
  each bus subscription reads its own durable pull consumer.

They use the real clock (a socket or a database thread is not driven by a
``MockClock``): waiting is on the recorded outcome, bounded by
``trio.fail_after``; no assertion depends on how long anything took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import stream_config
from tests.transport.test_bus_support import Recorder, Seen, handled
from triotok.resilience import Backoff
from triotok.store import OutboxRelay, OutboxTransport, open_store
from triotok.testing import NatsServer, open_test_system
from triotok.transport import (
    Envelope,
    EventBus,
    JetStreamTransport,
    PermanentError,
    RetryPolicy,
    TransientError,
    event,
    open_event_bus,
)

TIMEOUT = 30


# In the default registry: the outbox encodes with it, as in production.
@event("test.levels.created", version=1)
@dataclass(frozen=True)
class ProductCreated:
    key: str
    n: int


@event("test.other.paid", version=1)
@dataclass(frozen=True)
class OrderPaid:
    aggregate_id: str
    n: int


def env(payload: Any) -> Envelope:
    return Envelope.new(payload, tenant_id="acme")


#: Quick retries: attempts after about 0.01, 0.02 s.
QUICK = RetryPolicy(attempts=3, backoff=Backoff(min=0.01, max=0.05, jitter=0.0), timeout=5.0)


class Level:
    """A bus on one transport level, and how to tell when the events got through."""

    def __init__(self, name: str, bus: EventBus, system: Any) -> None:
        self.name = name
        self.bus = bus
        self.system = system


@asynccontextmanager
async def open_level(
    name: str, tmp_path: Path, nats: NatsServer | None, retry: RetryPolicy = QUICK
) -> AsyncIterator[Level]:
    async with AsyncExitStack() as stack:
        if name == "L0":
            system = await stack.enter_async_context(open_test_system(intensity=1000))
            bus = await stack.enter_async_context(open_event_bus(system, retry=retry))
            yield Level(name, bus, system)
            return
        # The store outlives the actors that use it.
        store = await stack.enter_async_context(open_store(f"sqlite:///{tmp_path}/levels.db"))
        system = await stack.enter_async_context(open_test_system(intensity=1000))
        outbox = OutboxTransport(store)
        if name == "L1":
            transport: Any = outbox
            sink = outbox.deliver
        else:
            assert nats is not None
            transport = JetStreamTransport(stream_config(nats), publisher=outbox.publish)
            await system.spawn(transport.child_spec().factory, transport, name="stream")
            with trio.fail_after(TIMEOUT):
                await transport.wait_connected()
            sink = transport.forward
        bus = await stack.enter_async_context(
            open_event_bus(system, transport=transport, retry=retry)
        )

        def relay() -> OutboxRelay:
            return OutboxRelay(
                store,
                sink,
                poll_interval=0.05,
                fallback_interval=0.05,
                backoff=Backoff(min=0.01, max=0.05, jitter=0),
            )

        await system.spawn(relay, name="relay")
        yield Level(name, bus, system)


@pytest.fixture(params=["L0", "L1", pytest.param("L2", marks=pytest.mark.nats)])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def nats(level: str, request: pytest.FixtureRequest) -> NatsServer | None:
    if level != "L2":
        return None
    server: NatsServer = request.getfixturevalue("nats_server")
    return server


class Log(list[Seen]):
    """The recorders' shared log; ``changed`` fires on every record."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    def append(self, seen: Seen) -> None:
        super().append(seen)
        self.changed.set()
        self.changed = trio.Event()


async def wait_until(log: Log, check: Callable[[], bool]) -> None:
    """Wait for ``check`` within TIMEOUT: on each record, and on a short tick for what
    settles after the record (an ack, a dead letter), which no event announces."""
    with trio.fail_after(TIMEOUT):
        while not check():
            with trio.move_on_after(0.02):
                await log.changed.wait()


def by_key(log: list[Seen], path: str) -> dict[str, list[int]]:
    keys: dict[str, list[int]] = {}
    for seen in handled(log, path):
        keys.setdefault(seen.key, []).append(seen.n)
    return keys


# --------------------------------------------------------------------------- delivery


async def test_matching_events_are_delivered_once_each(
    level: str, tmp_path: Path, nats: NatsServer | None
) -> None:
    log = Log()
    async with open_level(level, tmp_path, nats) as lv:
        ref = await lv.system.spawn(Recorder, log, name="products")
        await lv.bus.subscribe("test.levels.*", ref, group="products")
        for n in range(20):
            await lv.bus.publish(env(ProductCreated(f"k{n % 3}", n)))
            await lv.bus.publish(env(OrderPaid(f"o{n}", n)))  # not product.*: never delivered
        await wait_until(log, lambda: len(handled(log)) >= 20)
        await wait_until(log, lambda: lv.bus.statistics().in_flight == 0)
    assert sorted(s.n for s in handled(log)) == list(range(20))
    assert {s.event_type for s in log} == {"test.levels.created"}


async def test_each_group_gets_every_event_and_members_share_it(
    level: str, tmp_path: Path, nats: NatsServer | None
) -> None:
    log = Log()
    async with open_level(level, tmp_path, nats) as lv:
        a1 = await lv.system.spawn(Recorder, log, name="a1")
        a2 = await lv.system.spawn(Recorder, log, name="a2")
        b = await lv.system.spawn(Recorder, log, name="b")
        await lv.bus.subscribe("*", a1, group="a")
        await lv.bus.subscribe("*", a2, group="a")
        await lv.bus.subscribe("test.levels.*", b, group="b")
        for n in range(30):
            await lv.bus.publish(env(ProductCreated(f"k{n % 5}", n)))
        in_a = lambda: [s for s in handled(log) if s.path in (a1.path, a2.path)]  # noqa: E731
        await wait_until(log, lambda: len(in_a()) >= 30 and len(handled(log, b.path)) >= 30)
    assert sorted(s.n for s in in_a()) == list(range(30))  # once in group a
    assert sorted(s.n for s in handled(log, b.path)) == list(range(30))  # once in group b
    # Within a group, a key always goes to the same member.
    members_of_key: dict[str, set[str]] = {}
    for seen in in_a():
        members_of_key.setdefault(seen.key, set()).add(seen.path)
    assert all(len(paths) == 1 for paths in members_of_key.values())


async def test_per_key_order_holds_for_each_group(
    level: str, tmp_path: Path, nats: NatsServer | None
) -> None:
    log = Log()
    async with open_level(level, tmp_path, nats) as lv:
        g = await lv.system.spawn(Recorder, log, name="g")
        await lv.bus.subscribe("test.levels.*", g, group="g", lanes=4)

        async def producer(key: str) -> None:
            for n in range(25):
                await lv.bus.publish(env(ProductCreated(key, n)))

        async with trio.open_nursery() as nursery:
            for key in ("a", "b", "c", "d"):
                nursery.start_soon(producer, key)
        await wait_until(log, lambda: len(handled(log)) >= 100)
    assert by_key(log, g.path) == {key: list(range(25)) for key in "abcd"}


# --------------------------------------------------------------------------- failures


async def test_a_transient_failure_is_retried_and_keeps_its_key_in_order(
    level: str, tmp_path: Path, nats: NatsServer | None
) -> None:
    log = Log()
    failures = {"left": 2}

    def flaky(envelope: Any) -> BaseException | None:
        if envelope.payload.n == 3 and failures["left"] > 0:
            failures["left"] -= 1
            return TransientError("not yet")
        return None

    async with open_level(level, tmp_path, nats) as lv:
        g = await lv.system.spawn(Recorder, log, flaky, name="g")
        await lv.bus.subscribe("test.levels.*", g, group="g")
        for n in range(8):
            await lv.bus.publish(env(ProductCreated("one-key", n)))
        await wait_until(log, lambda: len(handled(log)) >= 8)
        await wait_until(log, lambda: lv.bus.statistics().in_flight == 0)
        assert await lv.bus.dead_letters.count() == 0
    attempts_of_3 = [s for s in log if s.n == 3]
    assert [(s.ok, s.retry) for s in attempts_of_3] == [(False, 0), (False, 1), (True, 2)]
    assert by_key(log, g.path) == {"one-key": list(range(8))}  # 4..7 waited for 3


async def test_permanent_and_exhausted_failures_are_dead_lettered_once(
    level: str, tmp_path: Path, nats: NatsServer | None
) -> None:
    log = Log()

    def script(envelope: Any) -> BaseException | None:
        n = envelope.payload.n
        if n == 1:
            return PermanentError("never")
        if n == 2:
            return TransientError("always")
        return None

    async with open_level(level, tmp_path, nats) as lv:
        g = await lv.system.spawn(Recorder, log, script, name="g")
        await lv.bus.subscribe("test.levels.*", g, group="g")
        for n in range(4):
            await lv.bus.publish(env(ProductCreated(f"k{n}", n)))
        await wait_until(log, lambda: len(handled(log)) >= 2)
        await wait_until(log, lambda: lv.bus.statistics().dead_lettered >= 2)
        entries = sorted(await lv.bus.dead_letters.list(), key=lambda e: e.attempts)
        assert [(e.envelope.payload.n, e.attempts) for e in entries if e.envelope] == [
            (1, 1),  # permanent: at once
            (2, QUICK.attempts),  # transient: every attempt, then dead-lettered
        ]
        assert [e.group for e in entries] == ["g", "g"]
        # Replay hands the event back to its group (it fails again: a new entry).
        await lv.bus.dead_letters.replay(entries[0].id)
        await wait_until(log, lambda: len([s for s in log if s.n == 1]) == 2)
    assert sorted(s.n for s in handled(log)) == [0, 3]
