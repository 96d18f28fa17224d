"""OTP supervision semantics under MockClock: strategies, restart types,
intensity escalation, backoff delays, shutdown order and timeouts."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotok import Actor, open_system
from triotok.actors import ActorCrashed, ActorError, ActorNotFound, InvalidConfig
from triotok.supervision import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorFailed,
    SupervisorSpec,
)


class Worker(Actor):
    """Logs lifecycle events to a shared list; ``"boom"`` crashes, ``"exit"`` stops normally."""

    def __init__(self, events: list[str], stop_delay: float = 0.0) -> None:
        self.events = events
        self.stop_delay = stop_delay

    async def on_start(self) -> None:
        self.events.append(f"start {self.ctx.path}")

    async def on_stop(self) -> None:
        if self.stop_delay:
            await trio.sleep(self.stop_delay)
        self.events.append(f"stop {self.ctx.path}")

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "exit":
            self.ctx.stop()
        return message


def spec(strategy: Strategy, events: list[str], **kwargs: Any) -> SupervisorSpec:
    children = [ChildSpec(name, Worker, (events,)) for name in ("a", "b", "c")]
    return SupervisorSpec("sup", children, strategy=strategy, **kwargs)


async def crash(system: Any, path: str) -> None:
    with pytest.raises(ActorCrashed):
        await system.ref(path).ask("boom")
    await trio.testing.wait_all_tasks_blocked()


def restarts(system: Any) -> dict[str, int]:
    return {c["name"]: c["restarts"] for c in system.tree(prefix="/app/sup")["children"]}


async def test_children_start_left_to_right_and_stop_right_to_left(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ONE, events))
    assert events == [
        "start /app/sup/a",
        "start /app/sup/b",
        "start /app/sup/c",
        "stop /app/sup/c",
        "stop /app/sup/b",
        "stop /app/sup/a",
    ]


async def test_one_for_one_restarts_only_the_failed_child(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ONE, events))
        events.clear()
        await crash(system, "/app/sup/b")
        assert events == ["stop /app/sup/b", "start /app/sup/b"]
        assert restarts(system) == {"a": 0, "b": 1, "c": 0}


async def test_one_for_all_restarts_every_child(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ALL, events))
        events.clear()
        await crash(system, "/app/sup/b")
        assert events == [
            "stop /app/sup/b",  # the failed child ends first
            "stop /app/sup/c",  # then the others, right to left
            "stop /app/sup/a",
            "start /app/sup/a",  # and all start again left to right
            "start /app/sup/b",
            "start /app/sup/c",
        ]
        assert restarts(system) == {"a": 1, "b": 1, "c": 1}


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.REST_FOR_ONE, events))
        events.clear()
        await crash(system, "/app/sup/b")
        assert events == [
            "stop /app/sup/b",
            "stop /app/sup/c",
            "start /app/sup/b",
            "start /app/sup/c",
        ]
        assert restarts(system) == {"a": 0, "b": 1, "c": 1}


@pytest.mark.parametrize(
    ("restart", "after_crash", "after_exit"),
    [
        (Restart.PERMANENT, "running", "running"),
        (Restart.TRANSIENT, "running", "stopped"),
        (Restart.TEMPORARY, None, None),  # removed from the supervisor
    ],
)
async def test_restart_types(
    autojump_clock: MockClock, restart: Restart, after_crash: str | None, after_exit: str | None
) -> None:
    events: list[str] = []

    def state(system: Any) -> str | None:
        rows = [c for c in system.ref("/app/sup").which_children() if c.id == "w"]
        return rows[0].state if rows else None

    for message, expected in (("boom", after_crash), ("exit", after_exit)):
        async with open_system() as system:
            sup = SupervisorSpec("sup", [ChildSpec("w", Worker, (events,), restart=restart)])
            await system.spawn_supervisor(sup)
            ref = system.ref("/app/sup/w")
            if message == "boom":
                with pytest.raises(ActorCrashed):
                    await ref.ask(message)
            else:
                await ref.ask(message)
            await trio.testing.wait_all_tasks_blocked()
            assert state(system) == expected, message


async def test_intensity_exceeded_stops_children_and_escalates_through_two_levels(
    autojump_clock: MockClock,
) -> None:
    events: list[str] = []
    inner = SupervisorSpec("inner", [ChildSpec("w", Worker, (events,))], intensity=1, period=10)
    outer = SupervisorSpec("outer", [inner], intensity=1, period=10)

    async def run() -> None:
        async with open_system(intensity=0) as system:
            await system.spawn_supervisor(outer)
            for _ in range(4):
                await crash(system, "/app/outer/inner/w")
            await trio.sleep_forever()  # pragma: no cover  # the root fails first

    with pytest.raises(SupervisorFailed) as info:
        await run()
    # The root gave up because /app/outer failed, because /app/outer/inner did.
    assert info.value.path == "/app"
    outer_failure = info.value.cause
    assert isinstance(outer_failure, SupervisorFailed)
    assert outer_failure.path == "/app/outer"
    inner_failure = outer_failure.cause
    assert isinstance(inner_failure, SupervisorFailed)
    assert inner_failure.path == "/app/outer/inner"
    assert isinstance(inner_failure.cause, RuntimeError)
    # Every incarnation that started also stopped: nothing was orphaned.
    starts = sum(e.startswith("start") for e in events)
    assert starts == sum(e.startswith("stop") for e in events) == 4


async def test_restarts_within_intensity_do_not_escalate(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ONE, events, intensity=2, period=5))
        await crash(system, "/app/sup/a")
        await crash(system, "/app/sup/a")
        await trio.sleep(5)  # the window slides past both restarts
        await crash(system, "/app/sup/a")
        await crash(system, "/app/sup/a")
        tree = system.tree(prefix="/app/sup")
        assert tree["state"] == "running"
        assert tree["restarts_in_period"] == 2
        assert restarts(system)["a"] == 4


async def test_backoff_delays_are_exponential_capped_and_reset(autojump_clock: MockClock) -> None:
    events: list[str] = []
    backoff = Backoff(min=0.5, max=2.0, jitter=0.0, reset_after=30.0)
    sup = SupervisorSpec(
        "sup", [ChildSpec("w", Worker, (events,))], intensity=100, period=1, backoff=backoff
    )
    async with open_system() as system:
        await system.spawn_supervisor(sup)
        ref = system.ref("/app/sup/w")
        delays = []
        for _ in range(5):
            with pytest.raises(ActorCrashed):
                await ref.ask("boom")
            crashed_at = trio.current_time()
            await trio.testing.wait_all_tasks_blocked()
            assert system.tree(prefix="/app/sup/w")["state"] == "backoff"
            assert await ref.ask("ping") == "ping"  # waits in the mailbox meanwhile
            delays.append(trio.current_time() - crashed_at)
        assert delays == pytest.approx([0.5, 1.0, 2.0, 2.0, 2.0])
        await trio.sleep(30)  # ran long enough: the count resets
        with pytest.raises(ActorCrashed):
            await ref.ask("boom")
        crashed_at = trio.current_time()
        await ref.ask("ping")
        assert trio.current_time() - crashed_at == pytest.approx(0.5)


async def test_backoff_jitter_stays_within_bounds(autojump_clock: MockClock) -> None:
    backoff = Backoff(min=1.0, max=1.0, jitter=0.5)
    sup = SupervisorSpec("sup", [ChildSpec("w", Worker, ([],))], intensity=100, backoff=backoff)
    async with open_system() as system:
        await system.spawn_supervisor(sup)
        ref = system.ref("/app/sup/w")
        for _ in range(10):
            with pytest.raises(ActorCrashed):
                await ref.ask("boom")
            crashed_at = trio.current_time()
            await ref.ask("ping")
            assert 1.0 <= trio.current_time() - crashed_at <= 1.5


async def test_shutdown_timeout_cancels_a_slow_child(autojump_clock: MockClock) -> None:
    events: list[str] = []
    children = [
        ChildSpec("fast", Worker, (events,)),
        ChildSpec("slow", Worker, (events, 60.0), shutdown=2.0),
        ChildSpec("killed", Worker, (events, 1.0), shutdown=0),
    ]
    async with open_system() as system:
        await system.spawn_supervisor(SupervisorSpec("sup", children))
        started = trio.current_time()
        await system.ref("/app/sup").stop()
        # "killed" is cancelled at once (no on_stop), "slow" after its 2 s.
        assert trio.current_time() - started == pytest.approx(2.0)
    assert [e for e in events if e.startswith("stop")] == ["stop /app/sup/fast"]


async def test_supervisor_waits_for_its_subtree_with_no_limit(autojump_clock: MockClock) -> None:
    events: list[str] = []
    inner = SupervisorSpec("inner", [ChildSpec("w", Worker, (events, 30.0), shutdown=None)])
    async with open_system() as system:
        await system.spawn_supervisor(SupervisorSpec("outer", [inner]))
        started = trio.current_time()
    assert trio.current_time() - started == pytest.approx(30.0)
    assert events[-1] == "stop /app/outer/inner/w"


async def test_dynamic_children(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        sup = await system.spawn_supervisor(SupervisorSpec("sup"))
        ref = await sup.start_child(ChildSpec("x", Worker, (events,)))
        assert ref.path == "/app/sup/x"
        await sup.start_child(SupervisorSpec("nested", [ChildSpec("y", Worker, (events,))]))
        assert [(c.id, c.kind, c.state) for c in sup.which_children()] == [
            ("x", "actor", "running"),
            ("nested", "supervisor", "running"),
        ]
        assert sup.count_children() == {"specs": 2, "active": 2, "supervisors": 1, "workers": 1}
        with pytest.raises(InvalidConfig, match="already has a child 'x'"):
            await sup.start_child(ChildSpec("x", Worker, (events,)))
        await sup.terminate_child("nested")
        assert events[-1] == "stop /app/sup/nested/y"
        assert sup.count_children()["specs"] == 1
        assert system.ref("/app/sup/x") == ref


def test_specs_are_validated_when_built() -> None:
    with pytest.raises(InvalidConfig, match="children: duplicate child id 'a'"):
        SupervisorSpec("s", [ChildSpec("a", Worker), ChildSpec("a", Worker)])
    with pytest.raises(InvalidConfig, match="strategy: unknown strategy"):
        SupervisorSpec("s", strategy="one_for_some")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match="intensity: must not be negative"):
        SupervisorSpec("s", intensity=-1)
    with pytest.raises(InvalidConfig, match="period: must be positive"):
        SupervisorSpec("s", period=0)
    with pytest.raises(InvalidConfig, match="min: must not be negative"):
        Backoff(min=-1)
    with pytest.raises(InvalidConfig, match="max: must be >= min"):
        Backoff(min=2, max=1)
    with pytest.raises(InvalidConfig, match="shutdown: must not be negative"):
        ChildSpec("a", Worker, shutdown=-1)
    with pytest.raises(InvalidConfig, match="restart: must be a Restart"):
        ChildSpec("a", Worker, restart="always")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match="id: 'a b' is not a valid name"):
        ChildSpec("a b", Worker)
    with pytest.raises(InvalidConfig, match="factory: must be callable"):
        ChildSpec("a", 42)  # type: ignore[arg-type]


async def test_tree_snapshot_reports_structure_state_and_filters(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ONE, events))
        await crash(system, "/app/sup/c")
        tree = system.tree()
        assert tree["path"] == "/app"
        assert tree["kind"] == "supervisor"
        [sup] = tree["children"]
        assert (sup["strategy"], sup["intensity"], sup["period"]) == ("one_for_one", 3, 5.0)
        c = sup["children"][2]
        assert c["path"] == "/app/sup/c"
        assert c["kind"] == "actor"
        assert c["state"] == "running"
        assert c["restarts"] == 1
        assert c["last_error"]["type"] == "RuntimeError"
        assert set(c["statistics"]) >= {
            "mailbox_depth",
            "capacity",
            "high_water_mark",
            "processed",
            "failed",
            "dropped",
            "latency_p50",
            "latency_p99",
        }
        assert system.tree(depth=0)["children"] == []
        assert [n["path"] for n in system.tree(depth=1)["children"]] == ["/app/sup"]
        assert system.tree(depth=1)["children"][0]["children"] == []
        await system.ref("/app/sup/a").stop()
        stopped = system.tree(state="running")
        assert [n["path"] for n in stopped["children"][0]["children"]] == [
            "/app/sup/b",
            "/app/sup/c",
        ]


async def test_operators_restart_and_stop_by_path(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        await system.spawn_supervisor(spec(Strategy.ONE_FOR_ONE, events, intensity=0))
        ref = system.ref("/app/sup/b")
        ref.tell("queued")
        events.clear()
        await system.restart("/app/sup/b")
        assert events == ["stop /app/sup/b", "start /app/sup/b"]
        assert restarts(system) == {"a": 0, "b": 1, "c": 0}
        assert system.tree(prefix="/app/sup")["restarts_in_period"] == 0  # nothing failed
        await system.restart("/app/sup")  # a whole subtree, right to left then left to right
        assert events[2:] == [
            "stop /app/sup/c",
            "stop /app/sup/b",
            "stop /app/sup/a",
            "start /app/sup/a",
            "start /app/sup/b",
            "start /app/sup/c",
        ]
        await system.stop_actor("/app/sup/c")
        assert [c.id for c in system.ref("/app/sup").which_children()] == ["a", "b"]
        with pytest.raises(ActorNotFound):
            await system.restart("/app/nothing")
        with pytest.raises(ActorError, match="no supervisor"):
            await system.restart("/app")
