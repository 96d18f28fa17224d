"""An actor system for tests: deterministic settling and virtual time.

:func:`open_test_system` runs a real :class:`~triotok.ActorSystem` and hands
back a :class:`TestSystem`, which adds what a test needs on top of it:

- :meth:`TestSystem.settle` returns once nothing can happen without the clock
  moving (``trio.testing.wait_all_tasks_blocked`` until the tree stops
  changing), so assertions see a quiescent system;
- :meth:`TestSystem.advance` moves a :class:`trio.testing.MockClock` forward
  deadline by deadline, settling at each one, so timers (backoff, ask
  timeouts, TTLs) fire in order and at their own time.

No real time passes and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from ..actors import ActorRef, ActorStatistics, DeadLetterOffice, Mailbox
from ..supervision import (
    ActorSystem,
    Entities,
    EntitiesRef,
    Restart,
    SupervisorFailed,
    SupervisorRef,
    SupervisorSpec,
    open_system,
)

__all__ = ("TestSystem", "open_test_system")

#: ``settle`` gives up after this many rounds of "all tasks blocked, but the tree changed".
MAX_SETTLE_ROUNDS = 10_000
#: ``advance`` gives up after firing this many deadlines (a timer loop with no delay).
MAX_ADVANCE_STEPS = 1_000_000


class TestSystem:
    """A running :class:`~triotok.ActorSystem` plus deterministic test helpers.

    Create it with :func:`open_test_system`.  The usual system API is
    forwarded (``spawn``, ``spawn_supervisor``, ``ref``, ``tree``,
    ``dead_letters``, ``stop``); the wrapped system is ``.system``.

    ::

        async with open_test_system() as system:
            ref = await system.spawn(Echo, name="echo")
            ref.tell("hi")
            await system.settle()
            assert ref.statistics().processed == 1
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, system: ActorSystem, nursery: trio.Nursery, *, strict: bool) -> None:
        #: The real actor system under test.
        self.system = system
        #: Strict event mode: events are round-tripped through the codec by
        #: every bus attached to this system (``runtime.strict_events``).
        self.strict = strict
        system.runtime.strict_events = strict
        self._nursery = nursery

    # ------------------------------------------------------------------ the system API

    @property
    def name(self) -> str:
        """The system's name (its root path is ``/<name>``)."""
        return self.system.name

    @property
    def dead_letters(self) -> DeadLetterOffice:
        """The system's dead-letter office."""
        return self.system.dead_letters

    @property
    def failure(self) -> SupervisorFailed | None:
        """Set when the root supervisor failed (its restart intensity was exceeded)."""
        return self.system.failure

    async def spawn(
        self,
        factory: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
    ) -> ActorRef:
        """Start ``factory(*args)`` under the root; see :meth:`ActorSystem.spawn`."""
        return await self.system.spawn(
            factory, *args, name=name, mailbox=mailbox, restart=restart, shutdown=shutdown
        )

    async def spawn_supervisor(
        self, spec: SupervisorSpec, *, restart: Restart = Restart.PERMANENT
    ) -> SupervisorRef:
        """Start a supervisor under the root; see :meth:`ActorSystem.spawn_supervisor`."""
        return await self.system.spawn_supervisor(spec, restart=restart)

    async def spawn_entities(
        self, spec: Entities, *, restart: Restart = Restart.PERMANENT
    ) -> EntitiesRef:
        """Start an entities region under the root; see :meth:`ActorSystem.spawn_entities`."""
        return await self.system.spawn_entities(spec, restart=restart)

    def ref(self, path: str) -> ActorRef:
        """The ref of the live node at ``path`` (raises ``ActorNotFound``)."""
        return self.system.ref(path)

    def tree(
        self, *, prefix: str | None = None, depth: int | None = None, state: str | None = None
    ) -> dict[str, Any]:
        """The JSON-ready snapshot of the tree; see :meth:`ActorSystem.tree`."""
        return self.system.tree(prefix=prefix, depth=depth, state=state)

    async def stop(self) -> None:
        """Stop the whole tree gracefully (leaving the block does it too)."""
        await self.system.stop()

    async def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Start ``fn(*args)`` in the background like ``nursery.start``; return what it started."""
        return await self._nursery.start(fn, *args)

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the background until the test system closes.

        For test drivers (a producer that keeps sending, a blocked ``send``).
        An exception from it fails the ``open_test_system`` block.
        """
        self._nursery.start_soon(fn, *args)

    # ------------------------------------------------------------------ views for tests

    def nodes(self) -> Iterator[dict[str, Any]]:
        """Every node of the tree (depth first, parents before children), as snapshots."""
        stack = [self.system.tree()]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node["children"]))

    def actors(self) -> dict[str, ActorStatistics]:
        """Statistics of every live actor in the tree, by path."""
        return {
            node["path"]: self.system.ref(node["path"]).statistics()
            for node in self.nodes()
            if node["kind"] == "actor"
        }

    def busy(self) -> list[str]:
        """Paths of the actors that still have queued messages."""
        return [path for path, stats in self.actors().items() if stats.mailbox_depth]

    # ------------------------------------------------------------------ determinism

    async def settle(self) -> None:
        """Wait until no actor can make progress without the clock moving.

        Loops ``trio.testing.wait_all_tasks_blocked()`` until every task is
        blocked *and* the tree (states, mailbox depths, counters, dead
        letters) is the same as after the previous round.  Time does not
        pass, even on an autojump clock: actors waiting for a timer (a
        backoff delay, a sleep in a handler) keep their queued messages;
        :meth:`advance` lets that time pass, :meth:`busy` lists them.
        """
        previous: object = None
        for _ in range(MAX_SETTLE_ROUNDS):
            await trio.testing.wait_all_tasks_blocked()
            current = self._fingerprint()
            if current == previous:
                return
            previous = current
        raise RuntimeError(f"the system did not settle within {MAX_SETTLE_ROUNDS} rounds")

    async def advance(self, seconds: float) -> None:
        """Move the ``MockClock`` forward by ``seconds``, firing timers in order, then settle.

        The clock jumps from one pending deadline to the next and the system
        settles at each, so every timer fires at its own virtual time and
        sees the effects of the earlier ones.  Deadlines of the caller count
        too: ``with trio.fail_after(1): await system.advance(5)`` times out.
        Needs the run's clock to be a :class:`trio.testing.MockClock` (the
        pytest-trio ``mock_clock`` / ``autojump_clock`` fixtures, or
        ``trio.run(..., clock=MockClock())``).
        """
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        clock = _mock_clock()
        target = trio.current_time() + seconds
        await self.settle()
        for _ in range(MAX_ADVANCE_STEPS):
            now = trio.current_time()
            wait = trio.lowlevel.current_statistics().seconds_to_next_deadline
            if now + wait > target:
                break
            clock.jump(max(wait, 0.0))
            await self.settle()
        else:
            raise RuntimeError(f"more than {MAX_ADVANCE_STEPS} timers fired within {seconds}s")
        now = trio.current_time()
        if target > now:
            clock.jump(target - now)
        await self.settle()

    def _fingerprint(self) -> object:
        rows = [
            (node["path"], node["state"], node["restarts"], repr(node.get("statistics")))
            for node in self.nodes()
        ]
        return self.dead_letters.statistics().total, rows


def _mock_clock() -> trio.testing.MockClock:
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock):
        raise RuntimeError(
            "advance() needs a trio.testing.MockClock: use the mock_clock or "
            "autojump_clock fixture, or trio.run(..., clock=MockClock())"
        )
    return clock


@asynccontextmanager
async def open_test_system(
    name: str = "test", *, strict: bool = True, **options: Any
) -> AsyncIterator[TestSystem]:
    """Run an actor system for a test and yield a :class:`TestSystem`.

    ``options`` go to :func:`~triotok.open_system` (``strategy``,
    ``intensity``, ``period`` of the root supervisor).  ``strict`` asks for
    strict event mode (every event round-tripped through the codec); it is
    stored as ``system.strict`` for the transport layer.

    ::

        async def test_echo(autojump_clock):
            async with open_test_system() as system:
                ref = await system.spawn(Echo, name="echo")
                assert await ref.ask("hi") == "hi"
                await system.advance(10.0)

    Leaving the block stops the tree; a failed root supervisor raises
    ``SupervisorFailed`` from it, as with ``open_system``.
    """
    async with open_system(name, **options) as system, trio.open_nursery() as nursery:
        yield TestSystem(system, nursery, strict=strict)
        nursery.cancel_scope.cancel()
