"""Supervision: supervisors, entities, restart policy, backoff, circuit breakers, rate limits.

The policies are synchronous state machines with no trio import; thin async
adapters drive them.
"""

from .._exceptions import ChildStartFailed as ChildStartFailed
from .._exceptions import CircuitOpen as CircuitOpen
from .._exceptions import ConflictError as ConflictError
from .._exceptions import EntityConflict as EntityConflict
from .._exceptions import EntityPoisoned as EntityPoisoned
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import RateLimited as RateLimited
from .._exceptions import SupervisorFailed as SupervisorFailed
from ._breaker import BreakerPolicy as BreakerPolicy
from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerTransition as BreakerTransition
from ._breaker_trio import CircuitBreaker as CircuitBreaker
from ._entities import EntitiesRef as EntitiesRef
from ._entities import EntitiesStatistics as EntitiesStatistics
from ._entity_spec import Entities as Entities
from ._entity_spec import check_version as check_version
from ._entity_spec import entity_name as entity_name
from ._passivation import PassivationPolicy as PassivationPolicy
from ._policy import BackoffState as BackoffState
from ._policy import RestartIntensity as RestartIntensity
from ._policy import backoff_delay as backoff_delay
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
    "ConflictError",
    "Entities",
    "EntitiesRef",
    "EntitiesStatistics",
    "EntityConflict",
    "EntityPoisoned",
    "InvalidConfig",
    "PassivationPolicy",
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
    "backoff_delay",
    "check_version",
    "entity_name",
    "open_system",
)
