"""A trio run in a background thread, driven one step at a time from the calling thread.

Hypothesis calls rules synchronously; actors only live inside a trio run.
:class:`LoopThread` keeps one ``trio.run`` (on a :class:`~trio.testing.MockClock`)
alive in a helper thread for the whole example, with a test system open in
it.  :meth:`LoopThread.call` runs one function there as a *step*:

- the clock autojumps only during a step, so virtual time never moves while
  the calling thread decides what to do next;
- the step ends with :meth:`TestSystem.settle`, so whatever runs next sees a
  quiescent system;
- a step that does not finish within ``step_limit`` virtual seconds, or
  ``step_limit_real`` wall-clock seconds, fails with :class:`TimeoutError`;
- its result or exception is handed back to the calling thread as is.

Between steps every trio task is blocked and the mock clock stands still,
so the calling thread may read actor state (statistics, the tree) directly.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import outcome
import trio
import trio.testing

from ._system import TestSystem, open_test_system

__all__ = ("LoopThread",)

#: Wall-clock seconds to wait for the thread to start or stop.
_JOIN_TIMEOUT = 30.0
_FINISHED = object()


class LoopThread:
    """One trio run with an open :class:`TestSystem`, in a daemon thread (module docstring)."""

    def __init__(
        self,
        *,
        name: str = "test",
        options: dict[str, Any] | None = None,
        step_limit: float = 3600.0,
        step_limit_real: float = 60.0,
        autojump_threshold: float = 0.0,
    ) -> None:
        self.clock = trio.testing.MockClock(autojump_threshold=math.inf)
        self.step_limit = step_limit
        self.step_limit_real = step_limit_real
        self.autojump_threshold = autojump_threshold
        self._name = name
        self._options = dict(options or {})
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._error_reported = False
        self._lock = threading.Lock()
        self._pending: set[queue.SimpleQueue[Any]] = set()
        self._system: TestSystem | None = None
        self._thread = threading.Thread(target=self._main, name=f"triotok-{name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(_JOIN_TIMEOUT):
            raise TimeoutError("the trio test loop did not start")
        if self._system is None:
            self._error_reported = True
            raise RuntimeError("the test system failed to start") from self._error

    @property
    def system(self) -> TestSystem:
        """The test system open in the loop."""
        assert self._system is not None
        return self._system

    @property
    def alive(self) -> bool:
        """True until the trio run has ended."""
        return not self._finished.is_set()

    def on_loop_thread(self) -> bool:
        """True when called from the loop's own thread (inside a step)."""
        return threading.current_thread() is self._thread

    # ------------------------------------------------------------------ the trio side

    def _main(self) -> None:
        try:
            trio.run(self._root, clock=self.clock)
        except BaseException as exc:  # handed to the calling thread by call() and close()
            self._error = exc
        finally:
            self._finished.set()
            self._ready.set()
            with self._lock:
                for reply in self._pending:
                    reply.put(_FINISHED)

    async def _root(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with (
            open_test_system(self._name, **self._options) as system,
            trio.open_nursery() as nursery,
        ):
            self._steps = nursery
            self._system = system
            self._ready.set()
            await self._stop.wait()
            # Graceful shutdown waits for handlers and shutdown timeouts: let time run.
            self.clock.autojump_threshold = 0
            nursery.cancel_scope.cancel()

    async def _step(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reply: queue.SimpleQueue[Any],
        scopes: list[trio.CancelScope],
        context: object,
    ) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            # Everything, cancellation included, is handed to the waiting thread;
            # this task ends right after, so nothing here is swallowed for good.
            result = await outcome.acapture(self._invoke, fn, args, kwargs, context)
        reply.put(result)

    async def _invoke(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], context: object
    ) -> Any:
        self.clock.autojump_threshold = self.autojump_threshold
        try:
            with _hypothesis_context(context), trio.move_on_after(self.step_limit) as guard:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                await self.system.settle()
                return result
        finally:
            self.clock.autojump_threshold = math.inf
        assert guard.cancelled_caught
        raise TimeoutError(
            f"{_describe(fn)} did not finish within {self.step_limit} s of virtual time: "
            "it waits for something that never happens (a hung rule or actor?)"
        )

    # ------------------------------------------------------------------ the calling side

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` as one step in the loop and return its result.

        ``fn`` may be sync or async.  Called from the loop thread itself (a
        step calling another step), ``fn`` is simply called: an async ``fn``
        then returns a coroutine for the caller to await.
        """
        if self.on_loop_thread():
            return fn(*args, **kwargs)
        if not self.alive:
            raise self._run_ended()
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        scopes: list[trio.CancelScope] = []
        with self._lock:
            self._pending.add(reply)
        try:
            try:
                self._token.run_sync_soon(
                    self._steps.start_soon,
                    self._step,
                    fn,
                    args,
                    kwargs,
                    reply,
                    scopes,
                    _hypothesis_context_now(),
                )
            except trio.RunFinishedError:
                raise self._run_ended() from None
            try:
                result = reply.get(timeout=self.step_limit_real)
            except queue.Empty:
                result = self._abandon(fn, reply, scopes)
        finally:
            with self._lock:
                self._pending.discard(reply)
        if result is _FINISHED:
            raise self._run_ended()
        assert isinstance(result, outcome.Outcome)
        if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
            # The system's body was cancelled under the step: the root supervisor failed.
            self._thread.join(_JOIN_TIMEOUT)
            raise self._run_ended() from result.error
        return result.unwrap()

    def _abandon(
        self, fn: Callable[..., Any], reply: queue.SimpleQueue[Any], scopes: list[trio.CancelScope]
    ) -> Any:
        """A step overran its wall-clock limit: cancel it and report where it hung."""
        for scope in scopes:
            try:
                self._token.run_sync_soon(scope.cancel)
            except trio.RunFinishedError:
                break
        with suppress(queue.Empty):
            reply.get(timeout=_JOIN_TIMEOUT)
        raise TimeoutError(
            f"{_describe(fn)} did not finish within {self.step_limit_real} s of real time "
            "(blocked outside trio, or a loop that never yields?)"
        )

    def _run_ended(self) -> BaseException:
        error = self._error
        if error is None:
            return RuntimeError("the test system is closed")
        self._error_reported = True
        return error

    def close(self) -> None:
        """Close the test system, end the run and join the thread.

        Raises the error that ended the run (a failed root supervisor, an
        error from a background task) unless a step already raised it.
        """
        if self.alive:
            with suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._stop.set)
        self._thread.join(_JOIN_TIMEOUT)
        if self._thread.is_alive():
            raise TimeoutError("the test system did not stop within 30 s of real time")
        if self._error is not None and not self._error_reported:
            self._error_reported = True
            raise self._error


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


# ---------------------------------------------------------------------- hypothesis context
# Hypothesis keeps the current example's build context in a thread-local; a
# step runs in the loop thread, so ``note()``, ``event()``, ``target()`` and
# ``data.draw()`` inside a rule need it carried over.  This is a private
# hypothesis name, hence the defensive import.


def _hypothesis_context_now() -> object:
    try:
        from hypothesis.control import _current_build_context
    except ImportError:  # pragma: no cover  # a future hypothesis moved it
        return None
    return _current_build_context.value


@contextmanager
def _hypothesis_context(context: object) -> Iterator[None]:
    if context is None:
        yield
        return
    from hypothesis.control import _current_build_context

    with _current_build_context.with_value(context):  # type: ignore[arg-type]  # captured above
        yield
