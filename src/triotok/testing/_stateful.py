"""ActorStateMachine: hypothesis rule-based state machines with async rules on a live system.

hypothesis-trio no longer works with current hypothesis; this fills the gap
for TrioToK.  Each example gets its own trio run in a helper thread
(:class:`~triotok.testing._loop.LoopThread`) with a :class:`TestSystem`
open on a ``MockClock``.  When a subclass is created, every ``@rule``,
``@initialize`` and ``@invariant`` method (sync or async, with or without
``@precondition``) is re-pointed at a wrapper that runs it in that loop as
one step: autojump clock on, then :meth:`TestSystem.settle`, result or error
handed back to hypothesis.  Preconditions stay synchronous and run in
hypothesis' thread, which may read actor state because the loop is idle
between steps.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import trio.testing
from hypothesis.stateful import (
    INITIALIZE_RULE_MARKER,
    INVARIANT_MARKER,
    RULE_MARKER,
    RuleBasedStateMachine,
)

from ._loop import LoopThread
from ._system import TestSystem

__all__ = ("ActorStateMachine",)

T = TypeVar("T")

#: Set on the wrappers this module makes, so nothing is wrapped twice.
_STEP = "_triotok_step"
_MARKERS = (RULE_MARKER, INITIALIZE_RULE_MARKER, INVARIANT_MARKER)


class ActorStateMachine(RuleBasedStateMachine):
    """A hypothesis ``RuleBasedStateMachine`` whose rules may be ``async def``.

    Rules, initializers and invariants run inside a live actor system on a
    :class:`trio.testing.MockClock` (``self.system``, ``self.clock``).  Each
    one is a *step*: the clock autojumps while it runs (so ``await
    trio.sleep(10)`` or an ask timeout costs no real time) and the system is
    settled before the next step; time stands still between steps.
    Inside a step (sync or async) you are on the trio thread: call
    ``ref.tell``, ``await ref.ask(...)``, ``await self.system.advance(1.0)``.
    Outside steps (``__init__``, ``teardown``) use :meth:`run`.

    ::

        class EchoMachine(ActorStateMachine):
            @initialize()
            async def start(self):
                self.echo = await self.system.spawn(Echo, name="echo")
                self.sent = 0

            @rule(msg=st.text())
            async def ask(self, msg):
                assert await self.echo.ask(msg) == msg
                self.sent += 1

            @invariant()
            def all_processed(self):
                assert self.echo.statistics().processed == self.sent

        TestEcho = EchoMachine.TestCase

    An exception in a step fails the example with its own traceback and is
    shrunk as usual.  A step that waits for something that never happens
    fails with :class:`TimeoutError` after ``step_limit`` virtual seconds
    (or ``step_limit_real`` wall-clock seconds).  ``teardown`` may be
    overridden (sync or async); the system is closed after it, and an error
    that ended the system (a failed root supervisor) is raised there if no
    step raised it first.
    """

    #: Name of the test system (root path ``/<system_name>``).
    system_name: ClassVar[str] = "test"
    #: Keyword arguments for :func:`open_test_system` (root ``intensity``, ...).
    system_options: ClassVar[Mapping[str, Any]] = {}
    #: Virtual seconds one step may take before it counts as hung.
    step_limit: ClassVar[float] = 3600.0
    #: Wall-clock seconds one step may take (a guard against real blocking).
    step_limit_real: ClassVar[float] = 60.0
    #: Real seconds every task must have been waiting before the clock jumps
    #: during a step. ``0`` jumps at once; a machine whose actors wait for
    #: worker threads (a real SQLite store) sets a few milliseconds, since trio
    #: counts a task waiting for a thread as blocked and would jump past it.
    autojump_threshold: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_steps(cls)

    def __init__(self) -> None:
        super().__init__()
        self._loop = LoopThread(
            name=self.system_name,
            options=dict(self.system_options),
            step_limit=self.step_limit,
            step_limit_real=self.step_limit_real,
            autojump_threshold=self.autojump_threshold,
        )
        self._closed = False

    @property
    def system(self) -> TestSystem:
        """The test system of this example."""
        return self._loop.system

    @property
    def clock(self) -> trio.testing.MockClock:
        """The example's mock clock (autojumps only during steps)."""
        return self._loop.clock

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await afn(*args)`` in the example's trio loop, as one step, and return its result.

        For code outside rules, e.g. ``self.ref = self.run(self.system.spawn,
        Echo)`` in ``__init__``.  Inside a rule, ``await`` directly instead.
        """
        if self._loop.on_loop_thread():
            raise RuntimeError("run() is for code outside steps; inside a rule, await directly")
        result: T = self._loop.call(afn, *args)
        return result

    def teardown(self) -> None:
        """Close the example's system (subclasses may override, sync or async)."""
        if self._loop.on_loop_thread():
            return  # called via super() from a subclass's teardown; closed after it
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.close()


def _wrap_steps(cls: type[ActorStateMachine]) -> None:
    """Re-point every rule, initializer and invariant of ``cls`` at a loop step.

    Hypothesis records a ``Rule``/``Invariant`` object on the decorated
    function under a marker attribute and later calls ``rule.function(machine,
    **args)``.  For each marked attribute visible on ``cls`` (its own and
    inherited ones, like hypothesis' own ``inspect.getmembers``) we install a
    step wrapper as the class attribute and give it copies of the markers
    whose ``function`` is wrapped too.
    """
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, attr in list(vars(klass).items()):
            if name in seen:
                continue
            seen.add(name)
            if name == "teardown" and klass is cls and not getattr(attr, _STEP, False):
                cls.teardown = _teardown_step(attr)  # type: ignore[method-assign]  # by design
                continue
            if not callable(attr) or getattr(attr, _STEP, False):
                continue
            marks = {m: getattr(attr, m) for m in _MARKERS if getattr(attr, m, None) is not None}
            if not marks:
                continue
            wrapper = _step(attr)
            for marker, record in marks.items():
                setattr(
                    wrapper, marker, dataclasses.replace(record, function=_step(record.function))
                )
            setattr(cls, name, wrapper)


def _step(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def step(self: ActorStateMachine, *args: Any, **kwargs: Any) -> Any:
        return self._loop.call(fn, self, *args, **kwargs)

    setattr(step, _STEP, True)
    return step


def _teardown_step(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def teardown(self: ActorStateMachine) -> Any:
        if self._loop.on_loop_thread():
            return fn(self)  # a sub-subclass's teardown calling super().teardown()
        try:
            if self._loop.alive:
                self._loop.call(fn, self)
        finally:
            self._close()
        return None

    setattr(teardown, _STEP, True)
    return teardown
