"""Supervision: supervisors, restart policy, backoff, circuit breakers, rate limits.

The policies are synchronous state machines with no trio import; thin async
adapters drive them.
"""

from .._exceptions import CircuitOpen as CircuitOpen
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import RateLimited as RateLimited
from .._exceptions import SupervisorFailed as SupervisorFailed

# -- resilience: circuit breaker and rate limiter (keep these lines together) --

__all__ = (
    "CircuitOpen",
    "InvalidConfig",
    "RateLimited",
    "SupervisorFailed",
)
