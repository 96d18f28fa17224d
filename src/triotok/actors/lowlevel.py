"""What the layers above borrow from the actor internals (like ``trio.lowlevel``).

Supervision builds its tree out of these: :class:`Node` is a place in the
tree, :class:`ActorCell` runs one actor's loop and mailbox, :class:`Runtime`
holds the services every cell of a system shares (dead letters, the tracing
seams :class:`ContextCapture` and ``message_hook``, the path registry);
entity regions also settle :class:`AskRequest` themselves and sample
latencies with :func:`percentile`; :class:`TracedActorRef` is the ref a
cell gets while a context capture is set, and :func:`track_capture` counts
the recording scopes that make such refs capture. Applications use
:mod:`triotok.actors` and :mod:`triotok.supervision`; these names are for
code that implements a supervisor, a test kit or a telemetry layer, and may
change between minor versions.

Nothing else in :mod:`triotok` reaches into ``triotok.actors._*``: a test
(``tests/test_layering.py``) enforces it.
"""

from .._util import fixup_module_metadata
from ._ask import AskRequest as AskRequest
from ._cell import ActorCell as ActorCell
from ._node import Node as Node
from ._ref import TracedActorRef as TracedActorRef
from ._ref import track_capture as track_capture
from ._runtime import ContextCapture as ContextCapture
from ._runtime import Runtime as Runtime
from ._stats import percentile as percentile

__all__ = (
    "ActorCell",
    "AskRequest",
    "ContextCapture",
    "Node",
    "Runtime",
    "TracedActorRef",
    "percentile",
    "track_capture",
)

fixup_module_metadata(__name__, globals())
