"""Which children a supervisor keeps, OTP-style (issue 10, points 1-3).

- A TEMPORARY child is never restarted: a group restart stops and removes it.
- A restarted supervisor starts exactly the children of its spec: dynamic
  children are gone, removed spec children are back.
- A child that cannot start is reported to whoever started it
  (:class:`ChildStartFailed`); nothing is kept and nothing is counted.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotok import Actor, open_system
from triotok.actors import ActorCrashed, ActorNotFound
from triotok.supervision import (
    ChildSpec,
    ChildStartFailed,
    Restart,
    Strategy,
    SupervisorFailed,
    SupervisorSpec,
)


class Worker(Actor):
    """Logs its lifecycle; ``"boom"`` crashes it, ``"exit"`` stops it normally."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def on_start(self) -> None:
        self.events.append(f"start {self.ctx.path}")

    async def on_stop(self) -> None:
        self.events.append(f"stop {self.ctx.path}")

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "exit":
            self.ctx.stop()
        return message


class NoStart(Actor):
    """``on_start`` raises: the actor never runs."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def on_start(self) -> None:
        self.events.append("attempt")
        raise OSError("port in use")

    async def on_stop(self) -> None:  # pragma: no cover  # never started, never stopped
        self.events.append("stop NoStart")

    async def receive(self, message: Any) -> Any:  # pragma: no cover  # never runs
        return message


def broken_factory(events: list[str]) -> Actor:
    events.append("attempt")
    raise ValueError("bad settings")


def ids(system: Any, path: str) -> list[str]:
    return [c.id for c in system.ref(path).which_children()]


def in_period(system: Any, path: str) -> int:
    restarts: int = system.tree(prefix=path, depth=0)["restarts_in_period"]
    return restarts


# ----------------------------------------------------------------------------- point 1


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_a_group_restart_stops_and_removes_a_temporary_child(
    autojump_clock: MockClock, strategy: Strategy
) -> None:
    events: list[str] = []
    children = [
        ChildSpec("a", Worker, (events,)),
        ChildSpec("t", Worker, (events,), restart=Restart.TEMPORARY),
        ChildSpec("c", Worker, (events,), restart=Restart.TRANSIENT),
    ]
    async with open_system() as system:
        await system.spawn_supervisor(SupervisorSpec("sup", children, strategy=strategy))
        temporary = system.ref("/app/sup/t")
        events.clear()
        with pytest.raises(ActorCrashed):
            await system.ref("/app/sup/a").ask("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert events == [
            "stop /app/sup/a",
            "stop /app/sup/c",
            "stop /app/sup/t",
            "start /app/sup/a",  # the group starts again without "t"
            "start /app/sup/c",
        ]
        assert ids(system, "/app/sup") == ["a", "c"]
        assert temporary.statistics().state == "stopped"
        with pytest.raises(ActorNotFound):
            system.ref("/app/sup/t")
        assert in_period(system, "/app/sup") == 1  # one group restart


async def test_a_temporary_childs_own_exit_is_never_restarted_nor_counted(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    children = [
        ChildSpec("a", Worker, (events,)),
        ChildSpec("t1", Worker, (events,), restart=Restart.TEMPORARY),
        ChildSpec("t2", Worker, (events,), restart=Restart.TEMPORARY),
    ]
    sup = SupervisorSpec("sup", children, strategy=Strategy.ONE_FOR_ALL, intensity=0)
    async with open_system() as system:
        await system.spawn_supervisor(sup)
        events.clear()
        with pytest.raises(ActorCrashed):
            await system.ref("/app/sup/t1").ask("boom")
        await system.ref("/app/sup/t2").ask("exit")
        await trio.testing.wait_all_tasks_blocked()
        # intensity=0: a single counted restart would have failed the supervisor.
        assert system.tree(prefix="/app/sup", depth=0)["state"] == "running"
        assert in_period(system, "/app/sup") == 0
        assert events == ["stop /app/sup/t1", "stop /app/sup/t2"]
        assert ids(system, "/app/sup") == ["a"]


# ----------------------------------------------------------------------------- point 2


def nested(events: list[str], **inner: Any) -> SupervisorSpec:
    children = [
        ChildSpec("s", Worker, (events,)),
        ChildSpec("t", Worker, (events,), restart=Restart.TEMPORARY),
    ]
    return SupervisorSpec("outer", [SupervisorSpec("inner", children, **inner)], intensity=10)


async def test_dynamic_children_are_gone_after_an_escalation_restart(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(nested(events, intensity=0))
        inner = system.ref("/app/outer/inner")
        dynamic = await inner.start_child(ChildSpec("d", Worker, (events,)))
        await system.ref("/app/outer/inner/t").ask("exit")  # a spec child removed meanwhile
        await trio.testing.wait_all_tasks_blocked()
        assert ids(system, "/app/outer/inner") == ["s", "d"]
        events.clear()
        with pytest.raises(ActorCrashed):
            await dynamic.ask("boom")  # intensity 0: "inner" fails, "outer" restarts it
        await trio.testing.wait_all_tasks_blocked()
        assert system.tree(prefix="/app/outer/inner", depth=0)["restarts"] == 1
        assert ids(system, "/app/outer/inner") == ["s", "t"]  # exactly its spec
        assert events == [
            "stop /app/outer/inner/d",
            "stop /app/outer/inner/s",
            "start /app/outer/inner/s",
            "start /app/outer/inner/t",
        ]
        assert dynamic.statistics().state == "stopped"
        with pytest.raises(ActorNotFound):
            system.ref("/app/outer/inner/d")


async def test_an_operators_restart_starts_exactly_the_spec_children(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(nested(events))
        inner = system.ref("/app/outer/inner")
        static = system.ref("/app/outer/inner/s")
        static.tell("queued")
        await inner.start_child(ChildSpec("d", Worker, (events,)))
        await inner.start_child(SupervisorSpec("dsup", [ChildSpec("w", Worker, (events,))]))
        await inner.terminate_child("t")
        assert ids(system, "/app/outer/inner") == ["s", "d", "dsup"]
        events.clear()
        await system.restart("/app/outer/inner")
        assert ids(system, "/app/outer/inner") == ["s", "t"]
        assert events == [
            "stop /app/outer/inner/dsup/w",
            "stop /app/outer/inner/d",
            "stop /app/outer/inner/s",
            "start /app/outer/inner/s",
            "start /app/outer/inner/t",
        ]
        # A spec child keeps its node (path, ref, mailbox) across the restart.
        assert system.ref("/app/outer/inner/s") == static
        for path in ("/app/outer/inner/d", "/app/outer/inner/dsup", "/app/outer/inner/dsup/w"):
            with pytest.raises(ActorNotFound):
                system.ref(path)
        # A repeatedly failing dynamic child no longer comes back to fail again.
        await system.restart("/app/outer/inner")
        assert ids(system, "/app/outer/inner") == ["s", "t"]


# ----------------------------------------------------------------------------- point 3


@pytest.mark.parametrize("factory", [NoStart, broken_factory], ids=["on_start", "factory"])
async def test_start_child_raises_when_the_child_cannot_start(
    autojump_clock: MockClock, factory: Any
) -> None:
    events: list[str] = []
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            SupervisorSpec("sup", [ChildSpec("a", Worker, (events,))], intensity=0)
        )
        with pytest.raises(ChildStartFailed) as info:
            await sup.start_child(ChildSpec("bad", factory, (events,)))
        error = info.value
        assert error.path == "/app/sup/bad"
        assert isinstance(error.cause, OSError | ValueError)
        assert error.__cause__ is error.cause
        assert error.code == "child_start_failed"
        assert str(error.cause) in str(error)
        await trio.testing.wait_all_tasks_blocked()
        assert events.count("attempt") == 1  # not restarted
        assert ids(system, "/app/sup") == ["a"]  # nothing kept
        with pytest.raises(ActorNotFound):
            system.ref("/app/sup/bad")
        assert in_period(system, "/app/sup") == 0  # not counted (intensity=0 still alive)
        assert system.tree(prefix="/app/sup", depth=0)["state"] == "running"
        # The same id can be used again, and system.spawn reports the same way.
        await sup.start_child(ChildSpec("bad", Worker, (events,)))
        with pytest.raises(ChildStartFailed, match="/app/late"):
            await system.spawn(factory, events, name="late")
        assert [c.id for c in system.root.ref.which_children()] == ["sup"]


async def test_a_spec_child_that_cannot_start_fails_its_supervisors_start(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    inner = SupervisorSpec(
        "inner",
        [
            ChildSpec("a", Worker, (events,)),
            ChildSpec("b", NoStart, (events,)),
            ChildSpec("c", Worker, (events,)),
        ],
    )
    outer = SupervisorSpec("outer", [ChildSpec("first", Worker, (events,)), inner])
    async with open_system() as system:
        with pytest.raises(ChildStartFailed) as info:
            await system.spawn_supervisor(outer)
        # The error names every supervisor it passed through, innermost last.
        assert info.value.path == "/app/outer"
        inner_error = info.value.cause
        assert isinstance(inner_error, ChildStartFailed)
        assert inner_error.path == "/app/outer/inner"
        child_error = inner_error.cause
        assert isinstance(child_error, ChildStartFailed)
        assert child_error.path == "/app/outer/inner/b"
        assert isinstance(child_error.cause, OSError)
        # What had started stopped again, right to left; "c" never started.
        assert events == [
            "start /app/outer/first",
            "start /app/outer/inner/a",
            "attempt",
            "stop /app/outer/inner/a",
            "stop /app/outer/first",
        ]
        for path in ("/app/outer", "/app/outer/inner", "/app/outer/inner/a"):
            with pytest.raises(ActorNotFound):
                system.ref(path)
        assert system.root.ref.which_children() == []
        assert system.tree(depth=0)["state"] == "running"


class StartsOnce(Actor):
    """Starts the first time only: every later incarnation fails in ``on_start``."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def on_start(self) -> None:
        if self.events:
            raise OSError("gone")
        self.events.append("started")

    async def receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


async def test_a_child_that_cannot_restart_counts_as_a_crash_each_time(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    spec = SupervisorSpec("sup", [ChildSpec("w", StartsOnce, (events,))], intensity=2, period=10)

    async def run() -> None:
        async with open_system(intensity=0) as system:
            await system.spawn_supervisor(spec)
            with pytest.raises(ActorCrashed):
                await system.ref("/app/sup/w").ask("boom")
            await trio.sleep_forever()  # pragma: no cover  # the root fails first

    with pytest.raises(SupervisorFailed) as info:
        await run()
    assert isinstance(info.value.cause, SupervisorFailed)
    assert info.value.cause.path == "/app/sup"
    assert isinstance(info.value.cause.cause, OSError)
