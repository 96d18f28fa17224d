"""Sans-I/O restart policies: restart intensity and backoff delays.

Plain synchronous state machines with time passed in, so they can be tested
exhaustively; the supervisor feeds them ``trio.current_time()``.
"""

from __future__ import annotations

import random
from collections import deque

from ._spec import Backoff

__all__ = ("BackoffState", "RestartIntensity", "backoff_delay")


def backoff_delay(policy: Backoff, failures: int, rng: random.Random) -> float:
    """The delay after ``failures`` earlier consecutive failures (0 for the first).

    ``min * 2**failures`` capped at ``max``, stretched by a random factor in
    ``[1, 1 + jitter]``.  One formula for supervisor restarts, bus retries and
    outbox retries.
    """
    exponent = min(max(failures, 0), 64)  # keeps 2**n finite for absurd counts
    delay = min(policy.max, policy.min * 2.0**exponent)
    if policy.jitter:
        delay *= 1 + rng.uniform(0, policy.jitter)
    return delay


class RestartIntensity:
    """OTP restart intensity: at most ``intensity`` restarts in any ``period``.

    ``allow(now)`` records a restart at ``now`` and says whether it is within
    the limit; the first restart beyond it returns ``False`` (the supervisor
    then gives up).
    """

    def __init__(self, intensity: int, period: float) -> None:
        self.intensity = intensity
        self.period = period
        self._restarts: deque[float] = deque()

    def allow(self, now: float) -> bool:
        restarts = self._restarts
        while restarts and restarts[0] <= now - self.period:
            restarts.popleft()
        restarts.append(now)
        return len(restarts) <= self.intensity

    def recent(self, now: float) -> int:
        """Restarts counted in the window ending at ``now``."""
        return sum(1 for t in self._restarts if t > now - self.period)

    def reset(self) -> None:
        self._restarts.clear()


class BackoffState:
    """Consecutive-failure counter of one child and the delay it implies."""

    def __init__(self, policy: Backoff, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self.started_at: float | None = None
        self._rng = rng or random.Random()

    def started(self, now: float) -> None:
        self.started_at = now

    def next_delay(self, now: float) -> float:
        """Delay before the next restart, after a failure at ``now``."""
        policy = self.policy
        reset_after = policy.max if policy.reset_after is None else policy.reset_after
        if self.started_at is not None and now - self.started_at >= reset_after:
            self.failures = 0
        delay = backoff_delay(policy, self.failures, self._rng)
        self.failures += 1
        return delay
