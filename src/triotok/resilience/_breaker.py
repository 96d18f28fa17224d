"""Circuit breaker policy and state machine, sans-I/O.

Nothing here imports trio: every method that depends on time takes ``now``
(seconds, any monotonic origin) explicitly, so the machine can be driven by
``trio.current_time()`` in production and by plain numbers in hypothesis tests.
The async adapter lives in ``_breaker_trio.py``.

Semantics follow resilience4j's count-based circuit breaker::

    CLOSED --(failure or slow rate >= threshold, >= minimum_calls)--> OPEN
    OPEN --(wait_in_open elapsed, seen on the next acquire/read)--> HALF_OPEN
    HALF_OPEN --(all half_open_calls recorded, rates below)--> CLOSED
    HALF_OPEN --(all half_open_calls recorded, a rate >= threshold)--> OPEN
    any --force_open()--> FORCED_OPEN    any --disable()--> DISABLED
    any --reset()--> CLOSED (clean window)

Deliberate difference from resilience4j: every transition starts a new
*generation*, and a call that was let through in an earlier generation is not
recorded when it finishes. A call started while CLOSED therefore never counts
as a half-open trial, which keeps the half-open permit accounting exact.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._exceptions import CircuitOpen, InvalidConfig
from .._util import percentage, positive_int, seconds

__all__ = (
    "LEGAL_TRANSITIONS",
    "BreakerPermit",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "CallOutcome",
    "TransitionListener",
)

_log = logging.getLogger("triotok.resilience.breaker")


class BreakerState(enum.StrEnum):
    """The state of a circuit breaker; the values are lowercase and JSON-ready."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class CallOutcome(enum.Enum):
    """How a finished call is recorded."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"  # neither success nor failure; frees a half-open permit


_FAILURE: Final = CallOutcome.FAILURE
_IGNORED: Final = CallOutcome.IGNORED


_AUTOMATIC: Final = frozenset(
    {
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
    }
)
_OPERATOR_TARGETS: Final = (BreakerState.FORCED_OPEN, BreakerState.DISABLED, BreakerState.CLOSED)

#: Every (from, to) pair the machine can ever emit: the four automatic edges
#: plus the operator's force_open/disable/reset from any other state.
LEGAL_TRANSITIONS: Final[frozenset[tuple[BreakerState, BreakerState]]] = _AUTOMATIC | frozenset(
    (src, dst) for dst in _OPERATOR_TARGETS for src in BreakerState if src is not dst
)


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change, handed to ``on_transition`` and subscribers.

    ``at`` is the clock reading at which the change was observed (for
    OPEN -> HALF_OPEN that is the first acquire or read after the wait).
    """

    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: float
    reason: str


TransitionListener = Callable[[BreakerTransition], object]

_CLOSED: Final = BreakerState.CLOSED
_HALF_OPEN: Final = BreakerState.HALF_OPEN


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a breaker, for metrics and the operators' tree.

    ``failure_rate`` and ``slow_call_rate`` are percentages, or ``-1.0`` (as in
    resilience4j) while fewer calls than needed are buffered: ``minimum_calls``
    (capped at ``window_size``) when CLOSED, ``half_open_calls`` when HALF_OPEN,
    and always ``-1.0`` when FORCED_OPEN or DISABLED (no window). When OPEN
    they are the rates of the calls that opened it: the sliding window after
    CLOSED -> OPEN, the trial calls after HALF_OPEN -> OPEN (3 failed of 4
    trials: ``75.0``), even if those are fewer than ``minimum_calls``.
    The buffered/failed/slow/successful counts describe the current window: the
    sliding window when CLOSED, the trial calls when HALF_OPEN, the window that
    tripped it when OPEN, nothing when FORCED_OPEN or DISABLED.
    ``not_permitted_calls`` and ``transitions`` count over the breaker's life.
    """

    name: str
    state: BreakerState
    failure_rate: float
    slow_call_rate: float
    buffered_calls: int
    failed_calls: int
    slow_calls: int
    not_permitted_calls: int
    successful_calls: int
    transitions: Mapping[tuple[BreakerState, BreakerState], int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form; transitions keyed ``"closed->open"``."""
        return {
            "name": self.name,
            "state": self.state.value,
            "failure_rate": self.failure_rate,
            "slow_call_rate": self.slow_call_rate,
            "buffered_calls": self.buffered_calls,
            "failed_calls": self.failed_calls,
            "slow_calls": self.slow_calls,
            "not_permitted_calls": self.not_permitted_calls,
            "successful_calls": self.successful_calls,
            "transitions": {
                f"{src.value}->{dst.value}": n for (src, dst), n in self.transitions.items()
            },
        }


def _exception_types(field: str, value: object) -> tuple[type[BaseException], ...]:
    if not isinstance(value, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        raise InvalidConfig(field, "must be a tuple of exception types")
    return value


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """The validated settings of a breaker (see ``CircuitBreaker`` for meanings).

    Raises ``InvalidConfig`` for a value outside its domain (``nan`` and
    ``inf`` included: every duration and threshold is finite). ``minimum_calls``
    larger than ``window_size`` is accepted and capped at ``window_size``, as
    resilience4j does (see ``effective_minimum_calls``).
    """

    window_size: int = 100
    minimum_calls: int = 10
    failure_rate_threshold: float = 50.0
    slow_call_duration: float = 60.0
    slow_call_rate_threshold: float = 100.0
    wait_in_open: float = 60.0
    half_open_calls: int = 10
    record_exceptions: tuple[type[BaseException], ...] = (Exception,)
    ignore_exceptions: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        for name in ("window_size", "minimum_calls", "half_open_calls"):
            positive_int(name, getattr(self, name))
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            percentage(name, getattr(self, name))
        for name in ("slow_call_duration", "wait_in_open"):
            seconds(name, getattr(self, name))
        _exception_types("record_exceptions", self.record_exceptions)
        _exception_types("ignore_exceptions", self.ignore_exceptions)

    @property
    def effective_minimum_calls(self) -> int:
        """``minimum_calls`` capped at ``window_size`` (a full window is always enough)."""
        return min(self.minimum_calls, self.window_size)

    def classify(self, exc: BaseException) -> CallOutcome:
        """How a call that raised ``exc`` is recorded.

        Cancellation and other ``BaseException``s that are not ``Exception``
        say nothing about the protected service: IGNORED. Then
        ``ignore_exceptions`` wins over ``record_exceptions``; an exception
        that matches neither counts as a success (resilience4j's rule).
        """
        if not isinstance(exc, Exception) or isinstance(exc, self.ignore_exceptions):
            return CallOutcome.IGNORED
        if isinstance(exc, self.record_exceptions):
            return CallOutcome.FAILURE
        return CallOutcome.SUCCESS

    def is_slow(self, duration: float) -> bool:
        """A call is slow when it takes strictly longer than ``slow_call_duration``."""
        return duration > self.slow_call_duration


class BreakerPermit:
    """Leave to run one call; settle it exactly once (success, error or release)."""

    __slots__ = ("generation", "settled", "started_at", "trial")

    def __init__(self, generation: int, started_at: float, trial: bool) -> None:
        self.generation = generation
        self.started_at = started_at
        self.trial = trial  # holds one of the half_open_calls permits
        self.settled = False


class _BreakerMachine:
    """The breaker's state machine; all clock readings are passed in as ``now``.

    Invariants (checked by the hypothesis tests):
    - ``len(window) == buffered``, ``failed <= buffered``, ``slow <= buffered``;
    - CLOSED: ``buffered <= window_size``;
    - HALF_OPEN: ``trial_in_flight + buffered <= half_open_calls``;
    - in any other state ``trial_in_flight == 0``.
    """

    def __init__(self, name: str, policy: BreakerPolicy) -> None:
        self.name = name
        self.policy = policy
        self.listeners: list[TransitionListener] = []
        self._state = BreakerState.CLOSED
        self._generation = 0
        # (failed, slow) per recorded call, oldest first.
        self._window: deque[tuple[bool, bool]] = deque()
        self._failed = 0
        self._slow = 0
        self._trial_in_flight = 0
        self._opened_at = 0.0
        self._not_permitted = 0
        self._transitions: Counter[tuple[BreakerState, BreakerState]] = Counter()
        # Copies of policy fields read on every call (attribute chains cost).
        self._window_size = policy.window_size
        self._minimum_calls = policy.effective_minimum_calls
        self._slow_after = policy.slow_call_duration
        self._failure_threshold = policy.failure_rate_threshold
        self._slow_threshold = policy.slow_call_rate_threshold

    # ----------------------------------------------------------------- reading

    @property
    def state(self) -> BreakerState:
        """The stored state, without applying an elapsed ``wait_in_open``."""
        return self._state

    def poll(self, now: float) -> BreakerState:
        """Apply OPEN -> HALF_OPEN if the wait has elapsed, and return the state."""
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.policy.wait_in_open:
            self._transition(BreakerState.HALF_OPEN, now, "wait_in_open elapsed")
        return self._state

    def retry_after(self, now: float) -> float:
        """Seconds a rejected caller should wait.

        OPEN: the rest of ``wait_in_open``. FORCED_OPEN: ``wait_in_open`` (a
        hint; only an operator closes it). HALF_OPEN with every trial permit
        taken: 0.0, the trial calls in flight decide soon. Otherwise 0.0.
        """
        state = self.poll(now)
        if state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self.policy.wait_in_open - now)
        if state is BreakerState.FORCED_OPEN:
            return float(self.policy.wait_in_open)
        return 0.0

    def statistics(self, now: float) -> BreakerStatistics:
        """A frozen snapshot (applies an elapsed wait first)."""
        state = self.poll(now)
        buffered = len(self._window)
        if state is BreakerState.OPEN:
            # OPEN is only entered automatically, with the window that decided
            # it (the sliding window or the trial calls): its rates are known.
            needed = 1
        elif state is BreakerState.HALF_OPEN:
            needed = self.policy.half_open_calls
        else:
            needed = self.policy.effective_minimum_calls
        enough = buffered > 0 and buffered >= needed
        return BreakerStatistics(
            name=self.name,
            state=state,
            failure_rate=self._failed * 100.0 / buffered if enough else -1.0,
            slow_call_rate=self._slow * 100.0 / buffered if enough else -1.0,
            buffered_calls=buffered,
            failed_calls=self._failed,
            slow_calls=self._slow,
            not_permitted_calls=self._not_permitted,
            successful_calls=buffered - self._failed,
            transitions=dict(self._transitions),
        )

    # ----------------------------------------------------------------- calls

    def acquire(self, now: float) -> BreakerPermit:
        """Let one call through or raise ``CircuitOpen`` (counted as not permitted)."""
        if self._state is _CLOSED:  # the hot path: nothing to poll
            return BreakerPermit(self._generation, now, False)
        state = self.poll(now)
        if state is BreakerState.CLOSED or state is BreakerState.DISABLED:
            return BreakerPermit(self._generation, now, trial=False)
        if (
            state is BreakerState.HALF_OPEN
            and self._trial_in_flight + len(self._window) < self.policy.half_open_calls
        ):
            self._trial_in_flight += 1
            return BreakerPermit(self._generation, now, trial=True)
        self._not_permitted += 1
        raise CircuitOpen(self.name, state.value, self.retry_after(now))

    def on_success(self, permit: BreakerPermit, now: float) -> None:
        """Record a call that returned normally."""
        self._settle(permit, CallOutcome.SUCCESS, now)

    def on_error(self, permit: BreakerPermit, now: float, exc: BaseException) -> None:
        """Record a call that raised ``exc`` (classified by the policy)."""
        self._settle(permit, self.policy.classify(exc), now)

    def release(self, permit: BreakerPermit) -> None:
        """Settle a call without recording it (ignored or cancelled)."""
        self._settle(permit, CallOutcome.IGNORED, permit.started_at)

    def _settle(self, permit: BreakerPermit, outcome: CallOutcome, now: float) -> None:
        if permit.settled:
            raise RuntimeError("breaker permit settled twice")
        permit.settled = True
        if permit.generation != self._generation:
            return  # let through before the last transition: its result is stale
        if permit.trial:
            self._trial_in_flight -= 1
        state = self._state
        if outcome is _IGNORED or (state is not _CLOSED and state is not _HALF_OPEN):
            return  # DISABLED records nothing
        failed = outcome is _FAILURE
        slow = now - permit.started_at > self._slow_after  # == policy.is_slow
        window = self._window
        window.append((failed, slow))
        self._failed += failed
        self._slow += slow
        n = len(window)
        if state is _CLOSED:
            if n > self._window_size:
                old_failed, old_slow = window.popleft()
                self._failed -= old_failed
                self._slow -= old_slow
                n -= 1
            # Cheap inclusive pre-check on the hot path; _tripped() words the reason.
            if n >= self._minimum_calls and (
                self._failed * 100.0 >= self._failure_threshold * n
                or self._slow * 100.0 >= self._slow_threshold * n
            ):
                self._transition(BreakerState.OPEN, now, self._tripped())
        elif n >= self.policy.half_open_calls:
            reason = self._tripped()
            if reason:
                self._transition(BreakerState.OPEN, now, reason)
            else:
                self._transition(BreakerState.CLOSED, now, "trial calls below thresholds")

    def _tripped(self) -> str:
        """Why the buffered calls open the breaker, or '' (thresholds are inclusive)."""
        n = len(self._window)
        policy = self.policy
        # Compare without dividing so integer percentages are exact.
        if self._failed * 100.0 >= policy.failure_rate_threshold * n:
            rate = self._failed * 100.0 / n
            return f"failure rate {rate:.1f}% >= {policy.failure_rate_threshold:g}%"
        if self._slow * 100.0 >= policy.slow_call_rate_threshold * n:
            rate = self._slow * 100.0 / n
            return f"slow call rate {rate:.1f}% >= {policy.slow_call_rate_threshold:g}%"
        return ""

    # ----------------------------------------------------------------- operator

    def force_open(self, now: float) -> None:
        """Reject every call until ``reset()`` or ``disable()``."""
        if self._state is not BreakerState.FORCED_OPEN:
            self._transition(BreakerState.FORCED_OPEN, now, "forced open by operator")

    def disable(self, now: float) -> None:
        """Let every call through and record nothing, until ``reset()``."""
        if self._state is not BreakerState.DISABLED:
            self._transition(BreakerState.DISABLED, now, "disabled by operator")

    def reset(self, now: float) -> None:
        """Back to CLOSED with a clean window (a no-op transition if already CLOSED)."""
        if self._state is BreakerState.CLOSED:
            self._new_generation(keep_window=False)
        else:
            self._transition(BreakerState.CLOSED, now, "reset by operator")

    # ----------------------------------------------------------------- internals

    def _new_generation(self, *, keep_window: bool) -> None:
        self._generation += 1
        self._trial_in_flight = 0
        if not keep_window:
            self._window.clear()
            self._failed = self._slow = 0

    def _transition(self, to: BreakerState, now: float, reason: str) -> None:
        src = self._state
        # OPEN keeps the window that tripped it, so statistics show why it opened.
        self._new_generation(keep_window=to is BreakerState.OPEN)
        self._state = to
        if to is BreakerState.OPEN:
            self._opened_at = now
        self._transitions[src, to] += 1
        event = BreakerTransition(self.name, src, to, now, reason)
        # The machine is consistent before anyone hears of the change, so a
        # listener may call back into it; a failing listener is logged, never
        # allowed to turn a recorded call into an error.
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                _log.exception("breaker %r: transition listener failed", self.name)
