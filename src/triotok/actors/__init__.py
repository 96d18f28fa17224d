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
    "FlightResult",
    "MailboxFull",
    "SingleFlight",
    "SingleFlightStatistics",
    "open_singleflight",
)
