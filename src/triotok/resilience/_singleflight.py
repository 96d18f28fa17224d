"""SingleFlight: one execution per key in flight, shared by all concurrent callers.

Follows Go's ``golang.org/x/sync/singleflight``: concurrent ``do(key, ...)``
calls share one execution and its result or exception, nothing is kept once
the execution completes, and ``forget(key)`` lets the next caller start afresh.

Unlike a naive ``await fn()`` in the first caller's task, the execution runs as
a task in a nursery owned by the singleflight's *owner* (an actor's nursery, or
the one :func:`open_singleflight` opens). A caller that is cancelled therefore
never cancels the execution the other callers are waiting for; only when the
*last* waiter leaves is the execution cancelled, because nobody wants its
result any more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, NamedTuple, TypeVar, TypeVarTuple, Unpack

import trio

from .._exceptions import ActorStopped
from .._util import single_leaf

__all__ = (
    "FlightResult",
    "SingleFlight",
    "SingleFlightStatistics",
    "open_singleflight",
)

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class FlightResult(NamedTuple, Generic[R]):
    """What :meth:`SingleFlight.do_ex` returns: the value and whether it was shared.

    ``shared`` is true when the execution's result was handed to more than one
    caller (Go's ``shared``): the first caller sees ``True`` as well if anybody
    joined while it ran. Unpacks like a tuple::

        value, shared = await sf.do_ex("k", load, "k")
    """

    value: R
    shared: bool


@dataclass(frozen=True, slots=True)
class SingleFlightStatistics:
    """A snapshot of a :class:`SingleFlight`'s counters.

    ``in_flight`` is the number of keys with an execution in flight, ``calls``
    counts every ``do``/``do_ex``, ``executions`` the executions started,
    ``shared`` the calls that joined an execution already in flight and
    ``abandoned`` the executions cancelled because all their waiters left.

    Example::

        assert sf.statistics().in_flight == 0
    """

    in_flight: int
    calls: int
    executions: int
    shared: int
    abandoned: int


class _Call:
    """One execution in flight and the bookkeeping of its waiters."""

    __slots__ = ("done", "dups", "error", "has_value", "scope", "tb", "value", "waiters")

    def __init__(self) -> None:
        self.done = trio.Event()
        # The execution's own scope: cancelled when the last waiter leaves.
        self.scope = trio.CancelScope()
        self.waiters = 0
        self.dups = 0
        self.has_value = False
        self.value: object = None
        self.error: Exception | None = None
        self.tb: TracebackType | None = None


class SingleFlight:
    """Deduplicate concurrent calls per key; executions run in the owner's nursery.

    ``nursery`` belongs to the owner (typically an actor's nursery); it must
    outlive the calls. When the owner's nursery is cancelled, executions in
    flight are cancelled and their waiters get :class:`~triotok.actors.ActorStopped`
    (with ``path`` set to ``name``) instead of hanging.

    Example::

        async with trio.open_nursery() as nursery:
            sf = SingleFlight(nursery, name="/app/tenants")
            tenant = await sf.do("acme", load_tenant, "acme")
            nursery.cancel_scope.cancel()

    Errors: every waiter of an execution re-raises the *same* exception object
    the function raised. Before each re-raise its ``__traceback__`` is reset to
    the execution's own traceback, so it does not grow with the number of
    waiters; it then shows the execution's frames plus the raising waiter's.
    Treat the exception as read-only, since other waiters share it.
    """

    def __init__(self, nursery: trio.Nursery, *, name: str = "singleflight") -> None:
        self._nursery = nursery
        self._name = name
        # Invariant: a key maps to the one execution a new caller would join;
        # it is removed when that execution completes, is abandoned or forgotten.
        self._calls: dict[Hashable, _Call] = {}
        self._n_calls = 0
        self._n_executions = 0
        self._n_shared = 0
        self._n_abandoned = 0

    @property
    def name(self) -> str:
        """The name given at construction (used in error messages)."""
        return self._name

    async def do(self, key: Hashable, fn: Callable[[Unpack[Ts]], Awaitable[R]], *args: *Ts) -> R:
        """Run ``fn(*args)`` once for all concurrent callers of ``key``; return its value.

        Raises the exception ``fn`` raised (shared by all its waiters), or
        :class:`~triotok.actors.ActorStopped` if the owner's nursery shut down first.

        Example::

            user = await sf.do(("user", 42), fetch_user, 42)
        """
        result = await self.do_ex(key, fn, *args)
        return result.value

    async def do_ex(
        self, key: Hashable, fn: Callable[[Unpack[Ts]], Awaitable[R]], *args: *Ts
    ) -> FlightResult[R]:
        """Like :meth:`do` but also say whether the result was shared.

        Example::

            value, shared = await sf.do_ex("k", load, "k")
        """
        self._n_calls += 1
        call = self._calls.get(key)
        if call is None:
            call = _Call()
            try:
                self._nursery.start_soon(self._execute, key, call, fn, *args)
            except RuntimeError as exc:  # the owner's nursery is closed to new tasks
                raise ActorStopped(self._name) from exc
            self._calls[key] = call
            self._n_executions += 1
        else:
            call.dups += 1
            self._n_shared += 1
        call.waiters += 1
        try:
            await call.done.wait()
        finally:
            call.waiters -= 1
            if call.waiters == 0 and not call.done.is_set():
                # Nobody wants the result any more: cancel the execution, and
                # unmap it now so a newcomer starts afresh instead of joining
                # an execution that is being torn down.
                call.scope.cancel()
                self._n_abandoned += 1
                self._unmap(key, call)
        if call.error is not None:
            raise call.error.with_traceback(call.tb)
        if not call.has_value:
            # The execution ended without an outcome: the owner's nursery was
            # cancelled (or a BaseException escaped fn into the owner).
            raise ActorStopped(self._name)
        return FlightResult(call.value, call.dups > 0)  # type: ignore[arg-type]  # value came from fn -> R

    def forget(self, key: Hashable) -> None:
        """Make the next caller of ``key`` start a new execution.

        An execution in flight still completes for the callers already waiting
        on it. Sync and never blocks.

        Example::

            sf.forget("acme")  # the tenant changed: do not join the old load
        """
        self._calls.pop(key, None)

    def forget_all(self) -> None:
        """:meth:`forget` every key: the next caller of any key starts afresh.

        Example::

            sf.forget_all()  # e.g. after a global cache invalidation
        """
        self._calls.clear()

    def in_flight(self, key: Hashable) -> bool:
        """Whether a new caller of ``key`` would join an execution in flight."""
        return key in self._calls

    def statistics(self) -> SingleFlightStatistics:
        """Return a snapshot of the counters (see :class:`SingleFlightStatistics`)."""
        return SingleFlightStatistics(
            in_flight=len(self._calls),
            calls=self._n_calls,
            executions=self._n_executions,
            shared=self._n_shared,
            abandoned=self._n_abandoned,
        )

    def _unmap(self, key: Hashable, call: _Call) -> None:
        # Identity check: after forget() the key may map to a newer execution.
        if self._calls.get(key) is call:
            del self._calls[key]

    async def _execute(
        self, key: Hashable, call: _Call, fn: Callable[[Unpack[Ts]], Awaitable[R]], *args: *Ts
    ) -> None:
        try:
            with call.scope:
                try:
                    call.value = await fn(*args)
                    call.has_value = True
                except Exception as exc:
                    # Captured for the waiters, never raised into the owner:
                    # a failing load must not crash the actor that owns it.
                    call.error = exc
                    call.tb = exc.__traceback__
        finally:
            # Runs on success, error, abandonment and the owner's cancellation
            # (whose Cancelled propagates on into the owner's nursery), so no
            # waiter is left hanging and the map never keeps a finished call.
            self._unmap(key, call)
            call.done.set()


@asynccontextmanager
async def open_singleflight(*, name: str = "singleflight") -> AsyncIterator[SingleFlight]:
    """Open a :class:`SingleFlight` that owns its own nursery (standalone use).

    Leaving the block cancels executions still in flight; their waiters (in
    other tasks) get :class:`~triotok.actors.ActorStopped`.

    Example::

        async with open_singleflight() as sf:
            value = await sf.do("k", load, "k")
    """
    async with owned_nursery() as nursery:
        yield SingleFlight(nursery, name=name)


@asynccontextmanager
async def owned_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for background executions, cancelled when the block is left.

    Its tasks capture their ``Exception``s for their waiters, so an error from
    the block is the only one expected: it is re-raised unwrapped rather than
    in a one-member ``ExceptionGroup``, as a context manager user expects.
    """
    single: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        single = single_leaf(group)
        if single is None:
            raise
    if single is not None:
        # Raised outside the except block so the group is not chained as context.
        raise single
