"""Supervision: supervisors, specs, restart intensity, entities, the actor system and its tree.

The restart policy is a synchronous state machine with no trio import; the
supervisor drives it. Backoff, circuit breakers and rate limits live in
:mod:`triotok.resilience` and are re-exported here (the public contract).
"""

from .._exceptions import ChildStartFailed as ChildStartFailed
from .._exceptions import ConflictError as ConflictError
from .._exceptions import EntityConflict as EntityConflict
from .._exceptions import EntityPoisoned as EntityPoisoned
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import SupervisorFailed as SupervisorFailed
from .._util import fixup_module_metadata
from ..resilience import Backoff as Backoff
from ..resilience import BackoffState as BackoffState
from ..resilience import BreakerPolicy as BreakerPolicy
from ..resilience import BreakerState as BreakerState
from ..resilience import BreakerStatistics as BreakerStatistics
from ..resilience import BreakerTransition as BreakerTransition
from ..resilience import CircuitBreaker as CircuitBreaker
from ..resilience import CircuitOpen as CircuitOpen
from ..resilience import RateDecision as RateDecision
from ..resilience import RateLimit as RateLimit
from ..resilience import RateLimited as RateLimited
from ..resilience import RateLimiter as RateLimiter
from ..resilience import RateLimiterStatistics as RateLimiterStatistics
from ..resilience import backoff_delay as backoff_delay
from ._entities import EntitiesRef as EntitiesRef
from ._entities import EntitiesStatistics as EntitiesStatistics
from ._entity_spec import Entities as Entities
from ._entity_spec import check_version as check_version
from ._entity_spec import entity_name as entity_name
from ._intensity import RestartIntensity as RestartIntensity
from ._passivation import PassivationPolicy as PassivationPolicy
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

fixup_module_metadata(__name__, globals())
