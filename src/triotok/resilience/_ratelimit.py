"""Keyed rate limiting with GCRA, sans-I/O.

GCRA (the generic cell rate algorithm) is a token bucket stored as one float
per key: the *theoretical arrival time* ``tat``, the instant at which the
key's bucket is full again. With emission interval ``T = 1 / rate`` and burst
window ``tau = capacity * T``, a request of ``cost`` at ``now`` is admitted iff
``max(tat, now) + cost * T - now <= tau``, and then ``tat`` moves there.

Invariant: over any interval of length ``d`` a key admits at most
``capacity + rate * d`` units (up to ``_EPS`` = 1e-6 token of float rounding).

A key whose ``tat`` is not after ``now`` has a full bucket, which is exactly
what a missing key means; such keys are dropped, so idle keys cost no memory
and expiring them loses nothing. Only ``max_keys`` overflow evicts a key that
still owes tokens (least recently used first); that key simply starts full.
Nothing here imports trio; ``RateLimiter`` in ``_ratelimit_trio.py`` adds the
clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from .._exceptions import InvalidConfig
from .._util import positive_int
from .._util import rate as rate_per_second

__all__ = ("GcraTable", "RateDecision", "RateLimit", "RateLimiterStatistics")

# Tolerance in tokens for float rounding: without it a request exactly at the
# boundary could be denied or `remaining` come out one short (0.7 / 0.1 ==
# 6.999...). A clock reading near 2e5 s (trio's default clock offset) is only
# precise to ~3e-11 s, so at rates up to ~3e4/s rounding stays below 1e-6.
_EPS: Final = 1e-6

REASON_EXCEEDED: Final = "rate limit exceeded"
REASON_TOO_COSTLY: Final = "cost exceeds capacity"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A bucket of ``capacity`` tokens refilled at ``refill_per_second``.

    ``RateLimit(100, 10)`` allows bursts of 100 and 10 per second sustained.
    """

    capacity: int
    refill_per_second: float

    def __post_init__(self) -> None:
        positive_int("capacity", self.capacity)
        rate_per_second("refill_per_second", self.refill_per_second)

    @property
    def emission_interval(self) -> float:
        """Seconds to refill one token."""
        return 1.0 / self.refill_per_second

    @property
    def burst_window(self) -> float:
        """Seconds to refill an empty bucket."""
        return self.capacity / self.refill_per_second


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer to one ``check``; carries what HTTP needs for its headers.

    ``remaining`` tokens after this decision, ``limit`` the capacity,
    ``reset_after`` seconds until the bucket is full again, ``retry_after``
    seconds until the same request would be admitted (0.0 when allowed,
    ``math.inf`` when its cost exceeds the capacity). ``reason`` is None when
    allowed. For the IETF draft headers: ``RateLimit-Policy: "default";q=limit;
    w=ceil(burst_window)``, ``RateLimit: "default";r=remaining;t=ceil(reset_after)``
    and, when denied, ``Retry-After: ceil(retry_after)``.
    """

    allowed: bool
    remaining: int
    limit: int
    reset_after: float
    retry_after: float
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``retry_after`` infinity becomes None)."""
        return {
            "allowed": self.allowed,
            "remaining": self.remaining,
            "limit": self.limit,
            "reset_after": self.reset_after,
            "retry_after": None if math.isinf(self.retry_after) else self.retry_after,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """Counters of a limiter: tracked keys, decisions and lossy evictions."""

    keys: int
    max_keys: int
    allowed: int
    denied: int
    evicted: int


class GcraTable:
    """Per-key GCRA buckets with bounded memory; time is passed in as ``now``.

    ``check(key, now, cost)`` consumes ``cost`` tokens if available and
    returns a ``RateDecision``; a denied request consumes nothing. At most
    ``max_keys`` keys owing tokens are tracked (least recently used evicted).
    """

    def __init__(self, rate: RateLimit, *, max_keys: int = 10_000) -> None:
        if not isinstance(rate, RateLimit):
            raise InvalidConfig("rate", f"must be a RateLimit, got {rate!r}")
        positive_int("max_keys", max_keys)
        self.rate = rate
        self.max_keys = max_keys
        # key -> tat; insertion order is recency of the last admitted request.
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._allowed = 0
        self._denied = 0
        self._evicted = 0

    def __len__(self) -> int:
        """Number of keys currently tracked (keys with a full bucket are not)."""
        return len(self._tat)

    def check(self, key: str, now: float, cost: int = 1) -> RateDecision:
        """Try to take ``cost`` tokens from ``key``'s bucket at time ``now``."""
        if type(cost) is not int or cost < 1:  # the hot path; the helper words the error
            positive_int("cost", cost)
        rate = self.rate.refill_per_second
        capacity = self.rate.capacity
        tat = max(self._tat.get(key, now), now)
        if cost > capacity:
            self._denied += 1
            return self._decision(False, tat, now, math.inf, REASON_TOO_COSTLY)
        new_tat = tat + cost / rate
        debt = (new_tat - now) * rate  # tokens owed if admitted; the bucket holds capacity
        if debt > capacity + _EPS:
            self._denied += 1
            retry_after = (debt - capacity) / rate
            return self._decision(False, tat, now, retry_after, REASON_EXCEEDED)
        self._allowed += 1
        self._tat[key] = new_tat
        self._tat.move_to_end(key)
        self._expire(now)
        return self._decision(True, new_tat, now, 0.0, None)

    def admit(self, key: str, now: float) -> float | None:
        """The allocation-free fast path of ``check(key, now)`` for one token.

        Admitted: the token is taken (and counted) and the answer is
        ``reset_after``, the seconds until the bucket is full again (see
        :meth:`remaining`). Not admitted: ``None``, and nothing is taken or
        counted; call ``check`` at the same ``now`` for the full decision.
        """
        rate = self.rate.refill_per_second
        table = self._tat
        tat = table.get(key, now)
        if tat < now:
            tat = now
        new_tat = tat + 1.0 / rate
        reset_after = new_tat - now
        if reset_after * rate > self.rate.capacity + _EPS:
            return None
        self._allowed += 1
        table[key] = new_tat
        table.move_to_end(key)
        self._expire(now)
        return reset_after

    def remaining(self, reset_after: float) -> int:
        """Tokens left in a bucket that is full again in ``reset_after`` seconds."""
        capacity = self.rate.capacity
        owed = reset_after * self.rate.refill_per_second
        return min(capacity, max(0, math.floor(capacity - owed + _EPS)))

    def forget(self, key: str) -> None:
        """Drop ``key``'s state: its bucket is full again."""
        self._tat.pop(key, None)

    def statistics(self) -> RateLimiterStatistics:
        """A frozen snapshot of the counters."""
        return RateLimiterStatistics(
            len(self._tat), self.max_keys, self._allowed, self._denied, self._evicted
        )

    def _decision(
        self, allowed: bool, tat: float, now: float, retry_after: float, reason: str | None
    ) -> RateDecision:
        capacity = self.rate.capacity
        owed = (tat - now) * self.rate.refill_per_second
        remaining = min(capacity, max(0, math.floor(capacity - owed + _EPS)))
        return RateDecision(
            allowed=allowed,
            remaining=remaining,
            limit=capacity,
            reset_after=max(0.0, tat - now),
            retry_after=retry_after,
            reason=reason,
        )

    def _expire(self, now: float) -> None:
        table = self._tat
        # Oldest-touched first: drop full buckets (lossless) until one still owes.
        while table:
            oldest = next(iter(table))
            if table[oldest] > now:
                break
            del table[oldest]
        while len(table) > self.max_keys:
            table.popitem(last=False)
            self._evicted += 1
