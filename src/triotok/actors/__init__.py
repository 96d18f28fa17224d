"""The actor core: actors, refs, mailboxes, dead letters.

This layer imports nothing of TrioToK above it and no I/O library.
``SingleFlight`` and ``LoadingCache`` live in :mod:`triotok.resilience` and
are re-exported here (the public contract); what supervision borrows from the
internals is in :mod:`triotok.actors.lowlevel`.
"""

from .._exceptions import ActorCrashed as ActorCrashed
from .._exceptions import ActorError as ActorError
from .._exceptions import ActorNotFound as ActorNotFound
from .._exceptions import ActorStopped as ActorStopped
from .._exceptions import AskTimeout as AskTimeout
from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import MailboxFull as MailboxFull
from .._exceptions import UnknownMessage as UnknownMessage
from .._util import fixup_module_metadata
from ..resilience import CacheStatistics as CacheStatistics
from ..resilience import FlightResult as FlightResult
from ..resilience import LoadingCache as LoadingCache
from ..resilience import SingleFlight as SingleFlight
from ..resilience import SingleFlightStatistics as SingleFlightStatistics
from ..resilience import open_loading_cache as open_loading_cache
from ..resilience import open_singleflight as open_singleflight
from ._actor import Actor as Actor
from ._actor import ActorContext as ActorContext
from ._ask import Failure as Failure
from ._cell import BATCH as BATCH
from ._deadletters import DeadLetter as DeadLetter
from ._deadletters import DeadLetterOffice as DeadLetterOffice
from ._deadletters import DeadLetterReason as DeadLetterReason
from ._deadletters import DeadLetterStatistics as DeadLetterStatistics
from ._mailbox import Mailbox as Mailbox
from ._mailbox import Overflow as Overflow
from ._ref import ActorRef as ActorRef
from ._runtime import MessageHook as MessageHook
from ._stats import ActorState as ActorState
from ._stats import ActorStatistics as ActorStatistics

__all__ = (
    "BATCH",
    "Actor",
    "ActorContext",
    "ActorCrashed",
    "ActorError",
    "ActorNotFound",
    "ActorRef",
    "ActorState",
    "ActorStatistics",
    "ActorStopped",
    "AskTimeout",
    "CacheStatistics",
    "DeadLetter",
    "DeadLetterOffice",
    "DeadLetterReason",
    "DeadLetterStatistics",
    "Failure",
    "FlightResult",
    "InvalidConfig",
    "LoadingCache",
    "Mailbox",
    "MailboxFull",
    "MessageHook",
    "Overflow",
    "SingleFlight",
    "SingleFlightStatistics",
    "UnknownMessage",
    "open_loading_cache",
    "open_singleflight",
)

fixup_module_metadata(__name__, globals())
