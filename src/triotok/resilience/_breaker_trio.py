"""``CircuitBreaker``: the thin trio adapter over the sans-I/O breaker machine.

Every clock reading comes from ``trio.current_time()``, so
``trio.testing.MockClock`` (and pytest-trio's ``autojump_clock``) drives the
wait in OPEN and the slow-call measurement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar, TypeVarTuple, Unpack

import trio

from ._breaker import (
    BreakerPermit,
    BreakerPolicy,
    BreakerState,
    BreakerStatistics,
    TransitionListener,
    _BreakerMachine,
)

__all__ = ("CircuitBreaker",)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class CircuitBreaker:
    """A resilience4j-style circuit breaker for async calls.

    A count-based window of the last ``window_size`` calls is kept. Once it
    holds at least ``minimum_calls`` (capped at ``window_size``) and the
    failure rate reaches ``failure_rate_threshold`` percent, or the share of
    calls slower than ``slow_call_duration`` seconds reaches
    ``slow_call_rate_threshold`` percent, the breaker opens: calls fail fast
    with ``CircuitOpen`` for ``wait_in_open`` seconds. It then lets exactly
    ``half_open_calls`` trial calls through and closes or reopens by their
    rates. ``record_exceptions`` are failures, other exceptions successes,
    ``ignore_exceptions`` and cancellation count as nothing.

    ::

        breaker = CircuitBreaker("payments", minimum_calls=5, wait_in_open=30)
        reply = await breaker.call(client.charge, order)
        async with breaker:
            await client.refund(order)

    ``on_transition`` (and every ``subscribe``\\ d callback) receives a
    ``BreakerTransition`` synchronously on each state change.
    """

    def __init__(
        self,
        name: str,
        *,
        window_size: int = 100,
        minimum_calls: int = 10,
        failure_rate_threshold: float = 50.0,
        slow_call_duration: float = 60.0,
        slow_call_rate_threshold: float = 100.0,
        wait_in_open: float = 60.0,
        half_open_calls: int = 10,
        record_exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignore_exceptions: tuple[type[BaseException], ...] = (),
        on_transition: TransitionListener | None = None,
    ) -> None:
        policy = BreakerPolicy(
            window_size=window_size,
            minimum_calls=minimum_calls,
            failure_rate_threshold=failure_rate_threshold,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
            wait_in_open=wait_in_open,
            half_open_calls=half_open_calls,
            record_exceptions=record_exceptions,
            ignore_exceptions=ignore_exceptions,
        )
        self._machine = _BreakerMachine(name, policy)
        # Permits held by `async with breaker:` blocks, per task (a stack, so
        # the same breaker may be entered again inside its own block).
        self._held: dict[trio.lowlevel.Task, list[BreakerPermit]] = {}
        if on_transition is not None:
            self._machine.listeners.append(on_transition)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._machine.state.value}>"

    @property
    def name(self) -> str:
        """The breaker's name, used in ``CircuitOpen``, metrics and the tree."""
        return self._machine.name

    @property
    def policy(self) -> BreakerPolicy:
        """The validated settings."""
        return self._machine.policy

    @property
    def state(self) -> BreakerState:
        """The current state (an elapsed ``wait_in_open`` turns OPEN into HALF_OPEN)."""
        return self._machine.poll(trio.current_time())

    def statistics(self) -> BreakerStatistics:
        """A frozen snapshot; ``.as_dict()`` gives the JSON form for the tree."""
        return self._machine.statistics(trio.current_time())

    def subscribe(self, listener: TransitionListener) -> Callable[[], None]:
        """Call ``listener(BreakerTransition)`` on every state change.

        Returns a function that unsubscribes. Listeners run synchronously
        inside the breaker; an exception from one is logged and dropped.
        """
        self._machine.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._machine.listeners:
                self._machine.listeners.remove(listener)

        return unsubscribe

    # ----------------------------------------------------------------- operator

    def force_open(self) -> None:
        """Reject every call (FORCED_OPEN) until ``reset()`` or ``disable()``."""
        self._machine.force_open(trio.current_time())

    def disable(self) -> None:
        """Let every call through and record nothing (DISABLED) until ``reset()``."""
        self._machine.disable(trio.current_time())

    def reset(self) -> None:
        """Back to CLOSED with a clean window."""
        self._machine.reset(trio.current_time())

    # ----------------------------------------------------------------- calls

    async def call(self, fn: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
        """Run ``await fn(*args)`` through the breaker and return its result.

        Raises ``CircuitOpen`` without calling ``fn`` when the breaker rejects
        the call; otherwise re-raises whatever ``fn`` raised.
        """
        machine = self._machine
        permit = machine.acquire(trio.current_time())
        try:
            result = await fn(*args)
        except BaseException as exc:
            # Recorded (or, for cancellation, released) and re-raised unchanged.
            machine.on_error(permit, trio.current_time(), exc)
            raise
        machine.on_success(permit, trio.current_time())
        return result

    async def __aenter__(self) -> CircuitBreaker:
        """Take a permit (or raise ``CircuitOpen``); the block is the measured call."""
        permit = self._machine.acquire(trio.current_time())
        self._held.setdefault(trio.lowlevel.current_task(), []).append(permit)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the block's outcome; never suppresses its exception."""
        task = trio.lowlevel.current_task()
        stack = self._held[task]
        permit = stack.pop()
        if not stack:
            del self._held[task]
        if exc is None:
            self._machine.on_success(permit, trio.current_time())
        else:
            self._machine.on_error(permit, trio.current_time(), exc)
