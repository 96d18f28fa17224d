"""Actors, refs and asks: the semantics docs/reference/actors.md promises, under MockClock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotok import Actor, open_system
from triotok.actors import (
    ActorCrashed,
    ActorNotFound,
    ActorStopped,
    AskTimeout,
    DeadLetterReason,
    InvalidConfig,
    Mailbox,
)
from triotok.actors.lowlevel import track_capture
from triotok.supervision import ChildStartFailed

from .conftest import Recorder


async def test_ask_returns_the_reply_and_tell_keeps_order(
    autojump_clock: MockClock, log: list[Any]
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        for i in range(10):
            ref.tell(i)
        assert await ref.ask("last") == "last"
        assert log == [*range(10), "last"]
        assert ref.path == "/app/rec"
        assert system.ref("/app/rec") == ref


async def test_lookup_of_unknown_path_raises(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        with pytest.raises(ActorNotFound) as info:
            system.ref("/app/nobody")
        assert info.value.path == "/app/nobody"


async def test_crash_fails_the_asker_dead_letters_the_message_and_restarts(
    autojump_clock: MockClock,
    log: list[Any],
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        ref.tell("before")
        with pytest.raises(ActorCrashed) as info:
            await ref.ask("boom")
        assert info.value.path == "/app/rec"
        assert isinstance(info.value.cause, ValueError)
        # The mailbox survived: a message queued behind the crash is handled.
        assert await ref.ask("after") == "after"
        assert log == ["before", "after"]
        stats = ref.statistics()
        assert (stats.restarts, stats.failed, stats.processed) == (1, 1, 2)
        assert stats.last_error == "ValueError: boom"
        [letter] = system.dead_letters.recent()
        assert letter.reason is DeadLetterReason.CRASHED
        assert letter.message == "boom"
        assert isinstance(letter.error, ValueError)
        assert letter.recipient == "/app/rec"


async def test_messages_queued_behind_a_crash_survive_the_restart(
    autojump_clock: MockClock, log: list[Any]
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        for message in ["a", "boom", "b", "c"]:
            ref.tell(message)
        assert await ref.ask("d") == "d"
        assert log == ["a", "b", "c", "d"]


async def test_ask_times_out_when_the_actor_never_answers(
    autojump_clock: MockClock, gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        started = trio.current_time()
        with pytest.raises(AskTimeout) as info:
            await ref.ask(("wait", gate), timeout=2.5)
        assert trio.current_time() - started == pytest.approx(2.5)
        assert info.value.path == "/app/rec"
        gate.set()


async def test_default_ask_timeout_is_five_seconds(
    autojump_clock: MockClock, gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        started = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(("wait", gate))
        assert trio.current_time() - started == pytest.approx(5.0)
        gate.set()


async def test_many_asks_with_mixed_timeouts_each_expire_on_time(
    autojump_clock: MockClock, gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        ref.tell(("wait", gate))
        expired: dict[float, float] = {}

        async def asker(seconds: float) -> None:
            started = trio.current_time()
            with pytest.raises(AskTimeout):
                await ref.ask("x", timeout=seconds)
            expired[seconds] = trio.current_time() - started

        async with trio.open_nursery() as nursery:
            for timeout in (3.0, 1.0, 2.0, 1.0 + 1e-3):
                nursery.start_soon(asker, timeout)
        assert expired == pytest.approx({3.0: 3.0, 1.0: 1.0, 2.0: 2.0, 1.001: 1.001})
        assert system.runtime.ask_timer.pending() == 0  # nothing left behind
        gate.set()


async def test_ask_to_a_stopped_actor_raises_actor_stopped(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        await ref.stop()
        with pytest.raises(ActorStopped):
            await ref.ask("x")
        ref.tell("lost")  # a tell to a stopped actor becomes a dead letter
        reasons = [d.reason for d in system.dead_letters.recent()]
        assert reasons == [DeadLetterReason.STOPPED, DeadLetterReason.STOPPED]
        with pytest.raises(ActorNotFound):
            system.ref("/app/rec")


async def test_actor_stopped_while_ask_waits_in_the_mailbox(
    autojump_clock: MockClock, gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec", shutdown=1.0)
        ref.tell(("wait", gate))
        outcome: list[BaseException] = []

        async def asker() -> None:
            try:
                await ref.ask("queued")
            except ActorStopped as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(asker)
            await trio.testing.wait_all_tasks_blocked()
            await ref.stop()  # the blocked handler is cancelled after 1 s
        assert len(outcome) == 1
        assert ref.statistics().state == "stopped"


async def test_cancelled_asker_does_not_break_the_actor(
    autojump_clock: MockClock, log: list[Any]
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        gate = trio.Event()
        ref.tell(("wait", gate))
        with trio.move_on_after(1):
            await ref.ask("abandoned")
        gate.set()
        assert await ref.ask("next") == "next"
        assert log[-2:] == ["abandoned", "next"]


async def test_ask_rejects_a_bad_timeout(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        with pytest.raises(InvalidConfig, match="timeout"):
            await ref.ask("x", timeout=-1)


async def test_hooks_run_once_per_incarnation(autojump_clock: MockClock) -> None:
    events: list[str] = []
    async with open_system() as system:
        ref = await system.spawn(Recorder, None, events, name="rec")
        with pytest.raises(ActorCrashed):
            await ref.ask("boom")
        await ref.ask("ok")
    assert events == [
        "start /app/rec",
        "stop /app/rec",
        "start /app/rec",
        "stop /app/rec",
    ]


async def test_spawn_rejects_bad_and_duplicate_names(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        await system.spawn(Recorder, name="rec")
        with pytest.raises(InvalidConfig, match="already has a child 'rec'"):
            await system.spawn(Recorder, name="rec")
        with pytest.raises(InvalidConfig, match="not a valid name"):
            await system.spawn(Recorder, name="a/b")
        with pytest.raises(InvalidConfig, match="capacity"):
            await system.spawn(Recorder, name="x", mailbox=Mailbox(capacity=0))


async def test_factory_that_is_not_an_actor_fails_the_child(autojump_clock: MockClock) -> None:
    async with open_system(intensity=0) as system:
        with pytest.raises(ChildStartFailed, match="not an Actor") as info:
            await system.spawn(lambda: object(), name="bad")
        assert isinstance(info.value.cause, TypeError)
        assert system.tree(depth=0)["state"] == "running"  # nothing counted


class Parent(Actor):
    async def on_start(self) -> None:
        self.child = await self.ctx.spawn(Recorder, name="child")

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        return await self.child.ask(message)


async def test_children_spawned_by_an_actor_live_under_its_path_and_its_incarnation(
    autojump_clock: MockClock,
) -> None:
    async with open_system() as system:
        parent = await system.spawn(Parent, name="parent")
        assert await parent.ask("hi") == "hi"
        child = system.ref("/app/parent/child")
        tree = system.tree()
        [parent_node] = tree["children"]
        assert [c["path"] for c in parent_node["children"]] == ["/app/parent/child"]
        with pytest.raises(ActorCrashed):
            await parent.ask("boom")
        await trio.testing.wait_all_tasks_blocked()
        # The old child stopped with the crashed incarnation; a new one took its path.
        assert child.statistics().state == "stopped"
        assert await parent.ask("again") == "again"
        assert system.ref("/app/parent/child") != child


class Background(Actor):
    cancelled = 0

    async def on_start(self) -> None:
        self.ctx.start_soon(self._tick)

    async def _tick(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            Background.cancelled += 1

    async def receive(self, message: Any) -> Any:
        return message


async def test_background_tasks_never_outlive_their_actor(autojump_clock: MockClock) -> None:
    Background.cancelled = 0
    async with open_system() as system:
        ref = await system.spawn(Background, name="bg")
        await ref.ask("x")
        await ref.stop()
        assert Background.cancelled == 1
        await system.spawn(Background, name="bg2")
    assert Background.cancelled == 2


class _Capture:
    """A context capture that sends the sender's ``current`` value with each message."""

    def __init__(self) -> None:
        self.current: Any = None
        self.captured: list[Any] = []

    def capture(self, message: Any) -> Any:
        self.captured.append(message)
        return self.current


@contextlib.contextmanager
def _recording_scope() -> Iterator[None]:
    """As a telemetry layer's recording span: traced refs capture while it is open."""
    track_capture(1)
    try:
        yield
    finally:
        track_capture(-1)


async def test_a_message_hook_wraps_the_messages_sent_with_a_context(
    autojump_clock: MockClock,
) -> None:
    seen: list[tuple[str, Any, Any]] = []

    @contextlib.contextmanager
    def hook(cell: Any, message: Any, context: Any) -> Iterator[None]:
        seen.append((cell.path, message, context))
        yield

    capture = _Capture()
    async with open_system() as system:
        system.runtime.context_capture = capture
        system.runtime.message_hook = hook
        ref = await system.spawn(Recorder, name="rec")
        ref.tell("idle")  # no recording scope open: nothing captured, nothing hooked
        await ref.ask("idle")
        with _recording_scope():
            capture.current = "ctx-1"
            ref.tell("told")
            await ref.send("sent")
            assert await ref.ask("asked") == "asked"
            with pytest.raises(ActorCrashed):
                await ref.ask("boom")
            capture.current = None  # a scope is open, but the sender is in no traced context
            await ref.ask("untraced")
        ref.tell("closed")  # the scope closed: nothing captured again
        await ref.ask("closed")
        stats = ref.statistics()
    assert capture.captured == ["told", "sent", "asked", "boom", "untraced"]  # not "idle", "closed"
    assert seen == [
        ("/app/rec", "told", "ctx-1"),
        ("/app/rec", "sent", "ctx-1"),
        ("/app/rec", "asked", "ctx-1"),
        ("/app/rec", "boom", "ctx-1"),
    ]
    assert stats.processed == 8  # the crashed one is counted as failed
    assert stats.latency_p50 is not None


async def test_a_traced_tell_that_crashes_is_a_dead_letter_of_the_message(
    autojump_clock: MockClock,
) -> None:
    capture = _Capture()
    capture.current = "ctx"
    async with open_system() as system:
        system.runtime.context_capture = capture
        ref = await system.spawn(Recorder, name="rec")
        with _recording_scope():
            ref.tell("boom")
            await ref.ask("after")  # the restarted incarnation answers
        letters = system.dead_letters.recent()
    assert [(letter.message, letter.reason.value) for letter in letters] == [("boom", "crashed")]


async def test_a_cell_spawned_before_the_capture_was_set_is_not_traced(
    autojump_clock: MockClock,
) -> None:
    capture = _Capture()
    capture.current = "ctx"
    async with open_system() as system:
        ref = await system.spawn(Recorder, name="rec")
        system.runtime.context_capture = capture
        with _recording_scope():
            assert await ref.ask("x") == "x"
    assert capture.captured == []
