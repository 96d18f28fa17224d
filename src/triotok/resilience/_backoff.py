"""Sans-I/O exponential backoff: the policy, the one delay formula, a failure counter.

Plain synchronous code with time passed in, so it can be tested exhaustively;
the supervisor (restart delays), the event bus and the outbox relay (retry
delays) feed it ``trio.current_time()``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._exceptions import InvalidConfig
from .._util import fraction, seconds

__all__ = ("Backoff", "BackoffState", "backoff_delay")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delay with jitter (Akka's BackoffSupervisor), for restarts and retries.

    The n-th consecutive restart of a child waits ``min * 2**n`` seconds,
    capped at ``max``, then stretched by a random factor in ``[1, 1 + jitter]``.
    The count resets once a child has run for ``reset_after`` seconds
    (default: ``max``) without failing.
    """

    min: float = 0.1
    max: float = 10.0
    jitter: float = 0.2
    reset_after: float | None = None

    def __post_init__(self) -> None:
        seconds("min", self.min)
        seconds("max", self.max)
        fraction("jitter", self.jitter, maximum=None)
        seconds("reset_after", self.reset_after, allow_none=True)
        if self.max < self.min:
            raise InvalidConfig("max", f"must be >= min ({self.min}), got {self.max}")


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
