"""The actor core: actors, refs, mailboxes, dead letters, singleflight, caches.

This layer imports nothing of TrioToK above it and no I/O library.
"""

from .._exceptions import ActorCrashed as ActorCrashed
from .._exceptions import ActorError as ActorError
from .._exceptions import ActorNotFound as ActorNotFound
from .._exceptions import ActorStopped as ActorStopped
from .._exceptions import AskTimeout as AskTimeout
from .._exceptions import MailboxFull as MailboxFull

# -- resilience: singleflight and loading cache (keep these lines together) --
from ._cache import CacheStatistics as CacheStatistics
from ._cache import LoadingCache as LoadingCache
from ._cache import open_loading_cache as open_loading_cache
from ._singleflight import FlightResult as FlightResult
from ._singleflight import SingleFlight as SingleFlight
from ._singleflight import SingleFlightStatistics as SingleFlightStatistics
from ._singleflight import open_singleflight as open_singleflight

__all__ = (
    "ActorCrashed",
    "ActorError",
    "ActorNotFound",
    "ActorStopped",
    "AskTimeout",
    "CacheStatistics",
    "FlightResult",
    "LoadingCache",
    "MailboxFull",
    "SingleFlight",
    "SingleFlightStatistics",
    "open_loading_cache",
    "open_singleflight",
)
