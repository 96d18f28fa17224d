"""Supervision: supervisors, restart policy, backoff, circuit breakers, rate limits.

The policies are synchronous state machines with no trio import; thin async
adapters drive them.
"""

from .._exceptions import CircuitOpen as CircuitOpen
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import RateLimited as RateLimited
from .._exceptions import SupervisorFailed as SupervisorFailed

# -- resilience: circuit breaker and rate limiter (keep these lines together) --
from ._breaker import BreakerPolicy as BreakerPolicy
from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerTransition as BreakerTransition
from ._breaker_trio import CircuitBreaker as CircuitBreaker
from ._ratelimit import RateDecision as RateDecision
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimiterStatistics as RateLimiterStatistics
from ._ratelimit_trio import RateLimiter as RateLimiter

__all__ = (
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "CircuitBreaker",
    "CircuitOpen",
    "InvalidConfig",
    "RateDecision",
    "RateLimit",
    "RateLimited",
    "RateLimiter",
    "RateLimiterStatistics",
    "SupervisorFailed",
)
