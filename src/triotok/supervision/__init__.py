"""Supervision: supervisors, restart policy, backoff, circuit breakers, rate limits.

The policies are synchronous state machines with no trio import; thin async
adapters drive them.
"""

from .._exceptions import ChildStartFailed as ChildStartFailed
from .._exceptions import CircuitOpen as CircuitOpen
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import RateLimited as RateLimited
from .._exceptions import SupervisorFailed as SupervisorFailed
from ._breaker import BreakerPolicy as BreakerPolicy
from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerTransition as BreakerTransition
from ._breaker_trio import CircuitBreaker as CircuitBreaker
from ._policy import BackoffState as BackoffState
from ._policy import RestartIntensity as RestartIntensity
from ._policy import backoff_delay as backoff_delay
from ._protocol import System as System
from ._ratelimit import RateDecision as RateDecision
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimiterStatistics as RateLimiterStatistics
from ._ratelimit_trio import RateLimiter as RateLimiter
from ._spec import Backoff as Backoff
from ._spec import ChildSpec as ChildSpec
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._spec import SupervisorSpec as SupervisorSpec
from ._supervisor import ChildInfo as ChildInfo
from ._supervisor import SupervisorRef as SupervisorRef
from ._supervisor import SupervisorStatistics as SupervisorStatistics
from ._system import ActorSystem as ActorSystem
from ._system import open_system as open_system

__all__ = (
    "ActorSystem",
    "Backoff",
    "BackoffState",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "ChildInfo",
    "ChildSpec",
    "ChildStartFailed",
    "CircuitBreaker",
    "CircuitOpen",
    "InvalidConfig",
    "RateDecision",
    "RateLimit",
    "RateLimited",
    "RateLimiter",
    "RateLimiterStatistics",
    "Restart",
    "RestartIntensity",
    "Strategy",
    "SupervisorFailed",
    "SupervisorRef",
    "SupervisorSpec",
    "SupervisorStatistics",
    "System",
    "backoff_delay",
    "open_system",
)
