"""Entities regions under MockClock: activation, ordering, passivation (idle and LRU),
commands during passivation, crashes, poison entities, operators and the tree."""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable
from typing import Any

import pytest
import trio
import trio.testing

from triotok import Actor
from triotok.actors import ActorCrashed, ActorError, ActorNotFound, ActorStopped, DeadLetterReason
from triotok.supervision import (
    ChildSpec,
    ConflictError,
    Entities,
    EntitiesRef,
    EntityConflict,
    EntityPoisoned,
    InvalidConfig,
    SupervisorRef,
    SupervisorSpec,
    entity_name,
)
from triotok.testing import TestSystem, open_test_system


class World:
    """What the entities of one test share: a fake durable store and a lifecycle log."""

    def __init__(self) -> None:
        self.stored: dict[Hashable, int] = {}
        self.events: list[str] = []
        self.live: dict[Hashable, int] = {}
        self.max_live = 0
        self.fail_start: set[Hashable] = set()
        self.gates: dict[str, trio.Event] = {}


class Counter(Actor):
    """Loads its total in on_start, saves it per command; ``"boom"`` crashes."""

    def __init__(self, key: Hashable, world: World) -> None:
        self.key = key
        self.world = world
        self.total = 0

    async def on_start(self) -> None:
        world = self.world
        if self.key in world.fail_start:
            raise RuntimeError(f"cannot load {self.key}")
        gate = world.gates.get(f"start {self.key}")
        if gate is not None:
            await gate.wait()
        self.total = world.stored.get(self.key, 0)
        world.live[self.key] = world.live.get(self.key, 0) + 1
        world.max_live = max(world.max_live, world.live[self.key])
        world.events.append(f"start {self.key}")

    async def on_stop(self) -> None:
        world = self.world
        gate = world.gates.get(f"stop {self.key}")
        if gate is not None:
            await gate.wait()
        world.live[self.key] -= 1
        world.events.append(f"stop {self.key}")

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if message == "get":
            return self.total
        if isinstance(message, tuple) and message[0] == "wait":
            await message[1].wait()
            message = message[2]
        self.total += message
        self.world.stored[self.key] = self.total
        self.world.events.append(f"{self.key} +{message}")
        return self.total


async def region_of(
    system: TestSystem, world: World, name: str = "counters", **options: Any
) -> EntitiesRef:
    spec = Entities(name, factory=lambda key: Counter(key, world), **options)
    return await system.spawn_entities(spec)


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------- spec


def test_spec_validates_its_fields() -> None:
    def f(key: Any) -> Actor:
        return Actor()

    for bad in (0, -1.0, math.nan, math.inf, "5", True):
        with pytest.raises(InvalidConfig, match="idle"):
            Entities("e", factory=f, idle=bad)  # type: ignore[arg-type]  # the point of the test
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidConfig, match="max_active"):
            Entities("e", factory=f, max_active=bad)  # type: ignore[arg-type]  # as above
    with pytest.raises(InvalidConfig, match="factory"):
        Entities("e", factory=42)  # type: ignore[arg-type]  # as above
    with pytest.raises(InvalidConfig, match="name"):
        Entities("a/b", factory=f)
    with pytest.raises(InvalidConfig, match="children"):
        Entities("e", factory=f, children=[ChildSpec("c", Actor)])


def test_entity_names_are_path_segments_and_distinct() -> None:
    assert entity_name(("acme", "0f8c-41")) == "acme.0f8c-41"
    assert entity_name("x") == "x"
    keys = [("a.b", "c"), ("a", "b.c"), ("a_2eb", "c"), "a b", "a/b", "", "ü" * 200]
    names = [entity_name(k) for k in keys]
    assert len(set(names)) == len(names)
    for name in names:
        assert 0 < len(name) <= 128
        assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


# --------------------------------------------------------------------------- activation


async def test_first_command_activates_and_on_start_loads_state(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    world.stored["a"] = 40
    async with open_test_system() as system:
        region = await region_of(system, world)
        assert region.statistics().active == 0
        assert await region.ask("a", 2) == 42
        assert await region.ask("a", 1) == 43
        assert world.events == ["start a", "a +2", "a +1"]
        stats = region.statistics()
        assert (stats.active, stats.activations, stats.commands) == (1, 1, 2)
        assert system.ref("/test/counters/a").statistics().processed == 2


async def test_commands_to_one_entity_run_in_order_one_at_a_time(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    gate = trio.Event()
    replies: dict[int, int] = {}
    async with open_test_system() as system:
        region = await region_of(system, world)

        async def ask(message: Any) -> None:
            n = message if isinstance(message, int) else message[2]
            replies[n] = await region.ask("a", message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, ("wait", gate, 1))
            await trio.testing.wait_all_tasks_blocked()
            for n in (10, 100):
                nursery.start_soon(ask, n)
                await trio.testing.wait_all_tasks_blocked()
            assert system.ref("/test/counters/a").statistics().mailbox_depth == 2
            assert replies == {}
            gate.set()
        assert replies == {1: 1, 10: 11, 100: 111}
        assert world.events == ["start a", "a +1", "a +10", "a +100"]


async def test_a_command_never_waits_behind_another_entity(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    gate = trio.Event()
    async with open_test_system() as system:
        region = await region_of(system, world)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(region.ask, "slow", ("wait", gate, 1))
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(1):
                assert await region.ask("fast", 5) == 5
            gate.set()


# --------------------------------------------------------------------------- passivation


async def test_idle_entities_are_passivated_after_idle_seconds(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world, idle=120.0)
        await region.ask("a", 1)
        await system.advance(60)
        await region.ask("b", 1)
        await system.advance(60)
        assert region.active_keys() == ["b"]  # a idle for 120 s, b for 60 s
        assert world.events[-1] == "stop a"
        await region.ask("b", 1)  # a command restarts b's idle period
        await system.advance(119)
        assert region.active_keys() == ["b"]
        await system.advance(1)
        assert region.active_keys() == []
        stats = region.statistics()
        assert (stats.idle_passivations, stats.passivations, stats.active) == (2, 2, 0)
        assert await region.ask("a", 1) == 2  # reactivated with its saved state
        assert region.statistics().activations == 3


async def test_a_busy_entity_is_not_passivated_for_idleness(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    gate = trio.Event()
    async with open_test_system() as system:
        region = await region_of(system, world, idle=10.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(region.ask, "a", ("wait", gate, 1), timeout=60))
            await system.advance(30)
            assert region.active_keys() == ["a"]
            gate.set()
        await system.advance(10)
        assert region.active_keys() == []


async def test_least_recently_used_idle_entity_is_passivated_beyond_max_active(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world, max_active=2)
        await region.ask("a", 1)
        await region.ask("b", 1)
        await region.ask("a", 1)  # b is now the least recently used
        await region.ask("c", 1)
        await system.settle()
        assert region.active_keys() == ["a", "c"]
        assert "stop b" in world.events
        assert "stop a" not in world.events
        assert region.statistics().lru_passivations == 1
        assert await region.ask("b", 0) == 1  # its state survived passivation


async def test_lru_skips_busy_entities_and_trims_once_they_are_idle(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    gate = trio.Event()
    async with open_test_system() as system:
        region = await region_of(system, world, max_active=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(region.ask, "a", ("wait", gate, 1))
            await trio.testing.wait_all_tasks_blocked()
            assert await region.ask("b", 1) == 1  # a is busy: not passivated
            assert sorted(region.active_keys()) == ["a", "b"]
            gate.set()
        await system.advance(1)
        assert len(region.active_keys()) == 1
        assert world.max_live == 1


async def test_command_during_passivation_goes_to_the_next_activation(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    world.gates["stop a"] = gate = trio.Event()
    async with open_test_system() as system:
        region = await region_of(system, world)
        await region.ask("a", 1)
        replies: dict[int, int] = {}

        async def ask(n: int) -> None:
            replies[n] = await region.ask("a", n)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(region.passivate, "a")
            await trio.testing.wait_all_tasks_blocked()  # a is in on_stop
            nursery.start_soon(ask, 10)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, 100)
            await trio.testing.wait_all_tasks_blocked()
            assert replies == {}
            assert world.live["a"] == 1
            del world.gates["stop a"]
            gate.set()
        assert replies == {10: 11, 100: 111}
        assert world.events == ["start a", "a +1", "stop a", "start a", "a +10", "a +100"]
        assert world.max_live == 1
        stats = region.statistics()
        assert (stats.activations, stats.operator_passivations, stats.active) == (2, 1, 1)


async def test_command_while_activating_waits_for_on_start(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    world.gates["start a"] = gate = trio.Event()
    async with open_test_system() as system:
        region = await region_of(system, world)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(region.ask, "a", 1)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(region.ask, "a", 2)
            await trio.testing.wait_all_tasks_blocked()
            assert world.events == []
            gate.set()
        assert world.events == ["start a", "a +1", "a +2"]


# --------------------------------------------------------------------------- failure


async def test_crash_restarts_the_entity_and_reloads_its_state(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world)
        await region.ask("a", 5)
        with pytest.raises(ActorCrashed) as info:
            await region.ask("a", "boom")
        assert info.value.path == "/test/counters/a"
        assert isinstance(info.value.cause, ValueError)
        letter = system.dead_letters.recent()[-1]
        assert (letter.message, letter.reason) == ("boom", DeadLetterReason.CRASHED)
        assert await region.ask("a", 1) == 6
        assert world.events.count("start a") == 2
        assert region.statistics().restarts == 1
        assert system.ref("/test/counters/a").statistics().restarts == 1
        assert system.tree(prefix="/test/counters", depth=0)["state"] == "running"


async def test_commands_queued_behind_a_crash_are_handled_after_the_restart(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    gate = trio.Event()
    outcomes: dict[str, Any] = {}
    async with open_test_system() as system:
        region = await region_of(system, world)

        async def ask(message: Any) -> None:
            try:
                outcomes[repr(message)[:6]] = await region.ask("a", message)
            except ActorCrashed:
                outcomes[repr(message)[:6]] = "crashed"

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, ("wait", gate, 1))
            await trio.testing.wait_all_tasks_blocked()
            for message in ("boom", 10):
                nursery.start_soon(ask, message)
                await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert outcomes == {"('wait": 1, "'boom'": "crashed", "10": 11}


async def test_poison_entity_is_stopped_and_its_key_refused_until_restarted(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    world.fail_start.add("p")
    async with open_test_system() as system:
        region = await region_of(system, world, intensity=2, period=10.0)
        with pytest.raises(EntityPoisoned) as info:
            await region.ask("p", 1)
        error = info.value
        assert (error.path, error.key, error.code) == ("/test/counters/p", "p", "entity_poisoned")
        assert isinstance(error.cause, RuntimeError)
        assert isinstance(error, ActorError)
        letter = system.dead_letters.recent()[-1]
        assert (letter.message, letter.reason) == (1, DeadLetterReason.STOPPED)
        with pytest.raises(EntityPoisoned):
            await region.ask("p", 2)
        # Others are unaffected and the region stays up.
        assert await region.ask("ok", 1) == 1
        assert region.poisoned_keys() == ["p"]
        node = system.tree(prefix="/test/counters/p")
        assert (node["state"], node["last_error"]["type"]) == ("failed", "RuntimeError")
        assert system.tree(prefix="/test/counters", depth=0)["state"] == "running"
        # An operator fixes the cause and restarts it by path.
        world.fail_start.clear()
        await system.system.restart("/test/counters/p")
        assert region.poisoned_keys() == []
        assert await region.ask("p", 3) == 3


async def test_repeated_crashing_commands_poison_the_key(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world, intensity=1, period=60.0)
        with pytest.raises(ActorCrashed):
            await region.ask("a", "boom")
        with pytest.raises(ActorCrashed):
            await region.ask("a", "boom")
        await system.settle()
        with pytest.raises(EntityPoisoned):
            await region.ask("a", 1)
        await region.restart("a")
        assert await region.ask("a", 1) == 1


async def test_crashes_spread_over_time_do_not_poison(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world, intensity=1, period=5.0, idle=1000.0)
        for _ in range(5):
            with pytest.raises(ActorCrashed):
                await region.ask("a", "boom")
            await system.advance(6)
        assert await region.ask("a", 1) == 1


# --------------------------------------------------------------------------- conflicts


class Versioned(Actor):
    """Writes with an expected version; the shared ``row`` is the durable copy."""

    def __init__(self, key: Hashable, row: dict[str, int], log: list[str]) -> None:
        self.row, self.log = row, log

    async def on_start(self) -> None:
        self.version = self.row["version"]
        self.log.append(f"load v{self.version}")

    async def receive(self, message: Any) -> Any:
        if message == "stale":  # a client that insists on an old version
            raise ConflictError("version 0 is stale")
        if self.row["version"] != self.version:
            raise ConflictError(f"expected v{self.version}")
        self.row["version"] += 1
        self.version += 1
        return self.version


async def test_a_conflict_reloads_the_entity_and_retries_the_command_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    row = {"version": 0}
    log: list[str] = []
    async with open_test_system() as system:
        spec = Entities("v", factory=lambda key: Versioned(key, row, log), intensity=0)
        region = await system.spawn_entities(spec)
        assert await region.ask("k", "write") == 1
        row["version"] = 5  # another node wrote meanwhile
        assert await region.ask("k", "write") == 6
        assert log == ["load v0", "load v5"]
        with pytest.raises(EntityConflict) as info:
            await region.ask("k", "stale")
        assert (info.value.path, info.value.key, info.value.code) == (
            "/test/v/k",
            "k",
            "entity_conflict",
        )
        assert isinstance(info.value, ConflictError)
        await system.settle()  # the second conflict reloads too
        assert log == ["load v0", "load v5", "load v6", "load v6"]
        stats = region.statistics()
        assert (stats.reloads, stats.conflicts, stats.restarts, stats.poisoned) == (3, 1, 0, 0)
        assert await region.ask("k", "write") == 7  # not poisoned: conflicts are not crashes


# --------------------------------------------------------------------------- operators


async def test_operators_passivate_and_restart_one_entity_by_path(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world)
        await region.ask("a", 1)
        await region.ask("b", 1)
        path = region.path_of("a")
        assert path == "/test/counters/a"
        await system.system.restart(path)
        assert world.events[-2:] == ["stop a", "start a"]
        assert system.ref(path).statistics().restarts == 1
        await system.system.stop_actor(path)
        assert region.active_keys() == ["b"]
        with pytest.raises(ActorError):
            system.ref(path)
        assert await region.passivate("a") is False
        assert await region.passivate("b") is True
        assert region.active_keys() == []
        assert await region.ask("a", 1) == 2


async def test_region_shows_in_the_tree_with_its_entities_as_children(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    async with open_test_system() as system:
        region = await region_of(system, world)
        for key in ("a", "b", ("t", 1)):
            await region.ask(key, 1)
        node = system.tree(prefix="/test/counters", depth=0)
        assert node["kind"] == "supervisor"
        assert node["children"] == []
        stats = node["statistics"]
        assert (stats["active"], stats["activations"], stats["mailbox_depth"]) == (3, 3, 0)
        assert stats["latency_p50"] is not None
        full = system.tree(prefix="/test/counters")
        assert sorted(c["name"] for c in full["children"]) == ["a", "b", "t.1"]
        assert [c.id for c in region.which_children()] == ["a", "b", "t.1"]
        snapshot = region.statistics()
        with pytest.raises(AttributeError):
            snapshot.active = 0  # type: ignore[misc]  # frozen
        assert snapshot.as_dict()["active"] == 3


async def test_region_inside_a_supervisor_and_stopping_the_system(
    autojump_clock: trio.testing.MockClock, world: World
) -> None:
    spec = Entities("counters", factory=lambda key: Counter(key, world))
    async with open_test_system() as system:
        await system.spawn_supervisor(SupervisorSpec("modules", [spec]))
        region = system.ref("/test/modules/counters")
        assert isinstance(region, EntitiesRef)
        await region.ask("a", 1)
        await region.ask("b", 1)
    assert world.live == {"a": 0, "b": 0}  # passivated (on_stop ran) when the tree stopped
    with pytest.raises(ActorStopped):
        await region.ask("a", 1)


async def test_region_refuses_static_children(autojump_clock: trio.testing.MockClock) -> None:
    async with open_test_system() as system:
        region = await system.spawn_entities(Entities("e", factory=lambda key: Actor()))
        assert not hasattr(region, "start_child")  # an EntitiesRef is no SupervisorRef
        with pytest.raises(ActorError):
            await system.runtime.lookup(region.path).start_child(ChildSpec("c", Actor))


async def test_a_region_ref_is_not_a_supervisor_ref(autojump_clock: trio.testing.MockClock) -> None:
    async with open_test_system() as system:
        region = await system.spawn_entities(Entities("e", factory=lambda key: Actor()))
        assert not isinstance(region, SupervisorRef)
        assert system.ref(region.path) == region
        assert repr(region) == "<EntitiesRef /test/e>"
        assert region.which_children() == []
        with pytest.raises(InvalidConfig, match="spawn_entities"):
            await system.spawn_supervisor(Entities("f", factory=lambda key: Actor()))
        with pytest.raises(InvalidConfig, match="spawn_entities"):
            await system.spawn(Entities("g", factory=lambda key: Actor()))  # type: ignore[arg-type]  # refused at run time too
        await region.stop()
        with pytest.raises(ActorNotFound):
            system.ref(region.path)


class Ticker(Actor):
    """Starts a background task in ``on_start`` when its key says so."""

    stopped: list[Hashable] = []  # per-test record, reset by the test

    def __init__(self, key: Hashable) -> None:
        self.key = key

    async def on_start(self) -> None:
        if self.key == "ticks":
            self.ctx.start_soon(self._tick)

    async def _tick(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            Ticker.stopped.append(self.key)

    async def receive(self, message: Any) -> Any:
        if message == "nursery":
            return self.ctx.nursery is not None
        return message


async def test_an_entity_keeps_its_nursery_only_when_on_start_used_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Ticker.stopped = []
    async with open_test_system() as system:
        region = await system.spawn_entities(Entities("tickers", factory=Ticker))
        # on_start used it: background tasks run and stop with the incarnation.
        assert await region.ask("ticks", "nursery") is True
        assert await region.passivate("ticks")
        assert Ticker.stopped == ["ticks"]
        # on_start did not: the incarnation serves without one, and says so.
        with pytest.raises(ActorCrashed) as info:
            await region.ask("plain", "nursery")
        assert isinstance(info.value.cause, ActorError)
        assert "serves without a nursery" in str(info.value.cause)
        # The region learned: later incarnations keep theirs.
        assert await region.ask("plain", "nursery") is True
        assert await region.ask("other", "nursery") is True


class Peeker(Actor):
    """Records what its on_start saw waiting in its mailbox."""

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    async def on_start(self) -> None:
        self.seen.append(self.ctx.peek())

    async def receive(self, message: Any) -> Any:
        self.seen.append(("handled", message, self.ctx.peek()))
        return message


async def test_on_start_sees_the_command_that_activated_the_entity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []
    async with open_test_system() as system:
        region = await system.system.spawn_entities(
            Entities("peek", factory=lambda key: Peeker(seen))
        )
        region.tell("k", "first")  # a tell shows itself, an ask its message
        assert await region.ask("k", "second") == "second"
        assert seen == ["first", ("handled", "first", "second"), ("handled", "second", None)]
        await region.passivate("k")
        seen.clear()
        assert await region.ask("k", "again") == "again"
        assert seen == ["again", ("handled", "again", None)]
