"""``RateLimiter``: GCRA buckets read against ``trio.current_time()``."""

from __future__ import annotations

import trio

from .._exceptions import RateLimited
from ._ratelimit import GcraTable, RateDecision

__all__ = ("RateLimiter",)


class RateLimiter(GcraTable):
    """Keyed rate limits for use inside trio.

    ``hit`` and ``try_hit`` read the clock with ``trio.current_time()`` (so
    ``MockClock`` drives them); the inherited ``check(key, now, cost)`` takes
    the time explicitly. Keys are strings such as ``"tenant-a:POST /orders"``.

    ::

        limits = RateLimiter(RateLimit(capacity=100, refill_per_second=10))
        decision = limits.hit(f"{tenant}:{route}")  # raises RateLimited when denied
        # or, to answer 429 yourself with the headers:
        decision = limits.try_hit(key)
        if not decision.allowed:
            ...
    """

    def try_hit(self, key: str, cost: int = 1) -> RateDecision:
        """Take ``cost`` tokens now if available; never raises for a denial."""
        return self.check(key, trio.current_time(), cost)

    def hit(self, key: str, cost: int = 1) -> RateDecision:
        """Take ``cost`` tokens now, or raise ``RateLimited`` with ``retry_after``."""
        decision = self.check(key, trio.current_time(), cost)
        if not decision.allowed:
            raise RateLimited(key, decision.retry_after, decision.reason or "rate limit exceeded")
        return decision
