"""Sans-I/O OTP restart intensity: at most so many restarts in a sliding period.

A plain synchronous state machine with time passed in; the supervisor feeds it
``trio.current_time()``.  (The restart delay, :class:`~triotok.resilience.Backoff`,
lives in :mod:`triotok.resilience` with the other resilience policies.)
"""

from __future__ import annotations

from collections import deque

__all__ = ("RestartIntensity",)


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
