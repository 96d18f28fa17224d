"""open_test_system: settle() and advance() on pytest-trio's mock clocks."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from triotok import Actor
from triotok.actors import Mailbox
from triotok.supervision import Backoff, ChildSpec, SupervisorFailed, SupervisorRef, SupervisorSpec
from triotok.testing import TestSystem, open_test_system


class Recorder(Actor):
    """Records what it handled; ``("sleep", s)`` sleeps ``s`` seconds first; "boom" raises."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
        self.log.append((trio.current_time(), message))
        return message


class Forwarder(Actor):
    """Passes every message on to another actor: settling must follow the chain."""

    def __init__(self, target: Any) -> None:
        self.target = target

    async def receive(self, message: Any) -> None:
        self.target.tell(message)


async def test_settle_waits_for_every_message_down_a_chain(mock_clock: Any) -> None:
    log: list[Any] = []
    async with open_test_system() as system:
        sink = await system.spawn(Recorder, log, name="sink")
        hop2 = await system.spawn(Forwarder, sink, name="hop2")
        hop1 = await system.spawn(Forwarder, hop2, name="hop1")
        for i in range(500):  # more than one batch of the mailbox loop
            hop1.tell(i)
        await system.settle()
        assert [m for _, m in log] == list(range(500))
        assert system.busy() == []
        assert {p: s.processed for p, s in system.actors().items()} == {
            "/test/sink": 500,
            "/test/hop2": 500,
            "/test/hop1": 500,
        }


async def test_settle_does_not_move_the_clock_even_with_autojump(autojump_clock: Any) -> None:
    log: list[Any] = []
    async with open_test_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        start = trio.current_time()
        ref.tell(("sleep", 10.0))
        ref.tell("after")
        await system.settle()
        assert trio.current_time() == start
        assert log == []
        assert system.busy() == ["/test/rec"]
        await system.advance(10.0)
        assert [m for _, m in log] == [("sleep", 10.0), "after"]
        assert system.busy() == []


async def test_advance_fires_timers_in_order_at_their_own_time(mock_clock: Any) -> None:
    log: list[Any] = []
    async with open_test_system() as system:
        refs = [await system.spawn(Recorder, log, name=f"r{i}") for i in range(3)]
        start = trio.current_time()
        refs[0].tell(("sleep", 3.0))
        refs[1].tell(("sleep", 1.0))
        refs[2].tell(("sleep", 2.0))
        refs[1].tell(("sleep", 0.5))  # queued behind the first: due at 1.5
        await system.advance(2.5)
        assert [(t - start, m) for t, m in log] == [
            (1.0, ("sleep", 1.0)),
            (1.5, ("sleep", 0.5)),
            (2.0, ("sleep", 2.0)),
        ]
        assert trio.current_time() - start == 2.5
        await system.advance(0.5)
        assert log[-1] == (start + 3.0, ("sleep", 3.0))


async def test_advance_zero_just_settles(mock_clock: Any) -> None:
    async with open_test_system() as system:
        ref = await system.spawn(Recorder, [], name="rec")
        ref.tell("x")
        before = trio.current_time()
        await system.advance(0)
        assert trio.current_time() == before
        assert ref.statistics().processed == 1
        with pytest.raises(ValueError, match="seconds"):
            await system.advance(-1)


async def test_advance_lets_backoff_restarts_happen(mock_clock: Any) -> None:
    log: list[Any] = []
    spec = SupervisorSpec(
        "workers",
        [ChildSpec("w", Recorder, (log,))],
        intensity=10,
        backoff=Backoff(min=1.0, max=8.0, jitter=0.0),
    )
    async with open_test_system() as system:
        await system.spawn_supervisor(spec)
        ref = system.ref("/test/workers/w")
        ref.tell("boom")
        ref.tell("queued")
        await system.settle()
        assert ref.statistics().state == "backoff"
        assert system.busy() == ["/test/workers/w"]
        await system.advance(0.999)
        assert log == []
        await system.advance(0.001)
        assert [m for _, m in log] == ["queued"]
        assert ref.statistics().restarts == 1


async def test_advance_needs_a_mock_clock() -> None:
    async with open_test_system() as system:
        with pytest.raises(RuntimeError, match="MockClock"):
            await system.advance(1.0)


async def test_callers_deadline_counts_while_advancing(mock_clock: Any) -> None:
    async with open_test_system() as system:
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(1.0):
                await system.advance(5.0)
        assert trio.current_time() - start == 1.0


async def test_forwarded_api_and_helpers(mock_clock: Any) -> None:
    async with open_test_system("kit", strict=False) as system:
        assert isinstance(system, TestSystem)
        assert system.name == "kit"
        assert system.strict is False
        ref = await system.spawn(Recorder, [], name="rec", mailbox=Mailbox(capacity=2))
        assert system.ref("/kit/rec") == ref
        assert [n["path"] for n in system.nodes()] == ["/kit", "/kit/rec"]
        assert system.tree()["children"][0]["statistics"]["capacity"] == 2
        await ref.stop()
        ref.tell("late")
        assert [d.reason.value for d in system.dead_letters.recent()] == ["stopped"]
        assert system.failure is None
        done = trio.Event()

        async def background() -> None:
            await trio.sleep(1.0)
            done.set()

        system.start_soon(background)
        await system.advance(1.0)
        assert done.is_set()


async def test_strict_mode_is_on_by_default() -> None:
    async with open_test_system() as system:
        assert system.strict is True


async def test_root_failure_is_raised_from_the_block(mock_clock: Any) -> None:
    async def crash_the_root() -> None:
        async with open_test_system(intensity=0) as system:
            ref = await system.spawn(Recorder, [], name="rec")
            ref.tell("boom")
            await trio.sleep_forever()  # cancelled when the root fails

    with pytest.raises(SupervisorFailed):
        await crash_the_root()


def test_settle_in_a_plain_trio_run() -> None:
    async def main() -> int:
        async with open_test_system() as system:
            ref = await system.spawn(Recorder, [], name="rec")
            for i in range(10):
                ref.tell(i)
            await system.settle()
            return ref.statistics().processed

    assert trio.run(main, clock=trio.testing.MockClock()) == 10


# ---------------------------------------------------------------------------- one System seam


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_a_test_system_offers_everything_an_actor_system_does() -> None:
    from triotok import ActorSystem
    from triotok.supervision import System

    actor_system = ActorSystem("probe")
    missing = {n for n in _public(ActorSystem) | set(vars(actor_system)) if not n.startswith("_")}
    assert missing - _public(TestSystem) == set()
    # The Protocol names them all (mypy checks both classes against it, in src).
    protocol = {n for n in vars(System) if not n.startswith("_")}
    assert missing == protocol
    assert isinstance(actor_system, System)


async def test_both_systems_are_a_system_and_work_through_it(autojump_clock: Any) -> None:
    from triotok import open_system
    from triotok.supervision import System

    async def exercise(system: System) -> list[str]:
        ref = await system.spawn(Recorder, [], name="r")
        spec = SupervisorSpec("sup", [ChildSpec("c", Recorder, ([],))])
        sup = await system.spawn_supervisor(spec)
        assert await ref.ask("hi") == "hi"
        await system.restart(ref.path)
        await system.stop_actor(sup.path)
        assert system.failure is None
        assert system.runtime.lookup(ref.path).restarts == 1
        root = system.ref(f"/{system.name}")
        assert isinstance(root, SupervisorRef)
        assert root.which_children()[0].id == "r"
        assert system.root.path == root.path
        return [child["path"] for child in system.tree()["children"]]

    async with open_test_system() as test_system:
        assert isinstance(test_system, System)
        assert await exercise(test_system) == ["/test/r"]
    async with open_system("app") as actor_system:
        assert isinstance(actor_system, System)
        assert await exercise(actor_system) == ["/app/r"]
