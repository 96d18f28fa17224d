"""Resilience building blocks: backoff, retry, circuit breaker, rate limiter, singleflight, cache.

::

    from triotok.resilience import (CircuitBreaker, BreakerState, CircuitOpen,
        SingleFlight, LoadingCache, Backoff, RateLimiter)

Each policy is a synchronous state machine with time passed in and no trio
import (``Backoff``/``backoff_delay``/``BackoffState``, ``RetryPolicy``,
``BreakerPolicy``, ``GcraTable``, ``ModePolicy``), driven by a thin trio
adapter (``CircuitBreaker``, ``RateLimiter``) or by the layer that uses it
(the supervisor, the event bus, the outbox relay, the service-mode monitor,
whose :class:`ModeBoard` the HTTP gate reads). ``SingleFlight`` and
``LoadingCache`` run their loads in a nursery of their owner.

This package sits below :mod:`triotok.actors`: it imports only
``triotok._exceptions``, ``triotok._util``, trio and cachetools. The names
stay importable from :mod:`triotok.actors` and :mod:`triotok.supervision` too.
"""

from .._exceptions import CircuitOpen as CircuitOpen
from .._exceptions import RateLimited as RateLimited
from .._util import fixup_module_metadata
from ._backoff import Backoff as Backoff
from ._backoff import BackoffState as BackoffState
from ._backoff import backoff_delay as backoff_delay
from ._breaker import BreakerPolicy as BreakerPolicy
from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerTransition as BreakerTransition
from ._breaker_trio import CircuitBreaker as CircuitBreaker
from ._cache import CacheStatistics as CacheStatistics
from ._cache import LoadingCache as LoadingCache
from ._cache import open_loading_cache as open_loading_cache
from ._modes import Criticality as Criticality
from ._modes import ModeBoard as ModeBoard
from ._modes import ModeChange as ModeChange
from ._modes import ModeDecision as ModeDecision
from ._modes import ModeOverride as ModeOverride
from ._modes import ModePolicy as ModePolicy
from ._modes import ModeReason as ModeReason
from ._modes import ModeSignals as ModeSignals
from ._modes import ModeStatistics as ModeStatistics
from ._modes import ServiceMode as ServiceMode
from ._modes import admits as admits
from ._ratelimit import GcraTable as GcraTable
from ._ratelimit import RateDecision as RateDecision
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimiterStatistics as RateLimiterStatistics
from ._ratelimit_trio import RateLimiter as RateLimiter
from ._retry import GiveUpReason as GiveUpReason
from ._retry import RetryDecision as RetryDecision
from ._retry import RetryPolicy as RetryPolicy
from ._retry import failure_cause as failure_cause
from ._retry import is_retryable as is_retryable
from ._singleflight import FlightResult as FlightResult
from ._singleflight import SingleFlight as SingleFlight
from ._singleflight import SingleFlightStatistics as SingleFlightStatistics
from ._singleflight import open_singleflight as open_singleflight

__all__ = (
    "Backoff",
    "BackoffState",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "CacheStatistics",
    "CircuitBreaker",
    "CircuitOpen",
    "Criticality",
    "FlightResult",
    "GcraTable",
    "GiveUpReason",
    "LoadingCache",
    "ModeBoard",
    "ModeChange",
    "ModeDecision",
    "ModeOverride",
    "ModePolicy",
    "ModeReason",
    "ModeSignals",
    "ModeStatistics",
    "RateDecision",
    "RateLimit",
    "RateLimited",
    "RateLimiter",
    "RateLimiterStatistics",
    "RetryDecision",
    "RetryPolicy",
    "ServiceMode",
    "SingleFlight",
    "SingleFlightStatistics",
    "admits",
    "backoff_delay",
    "failure_cause",
    "is_retryable",
    "open_loading_cache",
    "open_singleflight",
)

fixup_module_metadata(__name__, globals())
