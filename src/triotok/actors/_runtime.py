"""Per-system runtime services shared by every node: registry, dead letters, timers, hooks.

The supervision layer owns the :class:`Runtime` and fills in the hooks that
need knowledge from above the core (spawning children, publishing events,
tracing); the core calls them without importing anything above it.

Tracing uses two seams, both ``None`` (and free) unless a telemetry layer
sets them before the actors it traces are spawned:

* :attr:`Runtime.context_capture` (a :class:`ContextCapture`): a cell
  spawned while it is set gets a ref whose ``tell``/``send``/``ask`` capture
  the sender's context with the message; while no recording scope is open
  in the process (the layer above counts them with
  :func:`~triotok.actors.lowlevel.track_capture`) they do nothing more than
  an untraced ref;
* :attr:`Runtime.message_hook`: ``with hook(cell, message, context)`` around
  the handling of each message that carries a captured context. Messages
  sent outside any traced context are handled exactly as without telemetry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import ActorNotFound
from ._ask import AskTimer
from ._deadletters import DeadLetterOffice
from ._stats import ActorState

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._node import Node

__all__ = ("ContextCapture", "MessageHook", "Runtime")

#: Called around the handling of each message sent with a captured context:
#: ``with hook(cell, message, context): ...``.
MessageHook = Callable[["ActorCell", Any, Any], AbstractContextManager[Any]]


class ContextCapture(Protocol):
    """The sending side of tracing: what a traced ref asks before queueing a message.

    Asked only while a recording scope is open somewhere in the process
    (:func:`~triotok.actors.lowlevel.track_capture`); at 0 the refs skip it.
    """

    def capture(self, message: Any) -> Any:
        """The current task's context to send with ``message``, or ``None`` for none."""
        ...


class Runtime:
    """Services of one actor system, reachable from every node."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.registry: dict[str, Node] = {}
        self.dead_letters = DeadLetterOffice()
        self.ask_timer = AskTimer()
        #: Tracing seam: wraps the handling of messages sent with a context.
        self.message_hook: MessageHook | None = None
        #: Tracing seam: captures the sender's context (set before spawning).
        self.context_capture: ContextCapture | None = None
        #: Observes ``ctx.register(name, component)`` (a breaker, a cache).
        self.on_register: Callable[[Node, str, Any], None] | None = None
        #: Observes every state change of every node.
        self.on_state_change: Callable[[Node, ActorState], None] | None = None
        #: Publishes an event for ``ctx.publish(event)`` as ``publisher(event,
        #: actor_path)`` (set by the transport layer).
        self.publisher: Callable[[Any, str], Awaitable[None]] | None = None
        #: The owning ActorSystem (typed loosely: it lives in a layer above).
        self.system: Any = None
        #: Strict event mode (set by the test kit): the transport layer round-trips
        #: every event through the codec, so nothing passes that would break on
        #: the wire.
        self.strict_events = False
        #: Spawns a child of an actor for ``ctx.spawn`` (set by supervision).
        self.spawn_child: Callable[..., Awaitable[Any]] | None = None

    def register(self, node: Node) -> None:
        self.registry[node.path] = node

    def unregister(self, node: Node) -> None:
        if self.registry.get(node.path) is node:
            del self.registry[node.path]

    def lookup(self, path: str) -> Node:
        try:
            return self.registry[path]
        except KeyError:
            raise ActorNotFound(path) from None
