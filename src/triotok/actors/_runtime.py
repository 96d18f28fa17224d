"""Per-system runtime services shared by every node: registry, dead letters, timers, hooks.

The supervision layer owns the :class:`Runtime` and fills in the hooks that
need knowledge from above the core (spawning children, publishing events,
tracing); the core calls them without importing anything above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._exceptions import ActorNotFound
from ._ask import AskTimer
from ._deadletters import DeadLetterOffice
from ._stats import ActorState

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._node import Node

__all__ = ("MessageHook", "Runtime")

#: Called around every handled message when set: ``with hook(cell, message): ...``.
MessageHook = Callable[["ActorCell", Any], AbstractContextManager[Any]]


class Runtime:
    """Services of one actor system, reachable from every node."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.registry: dict[str, Node] = {}
        self.dead_letters = DeadLetterOffice()
        self.ask_timer = AskTimer()
        #: Tracing seam: wraps each message's handling (None = fast path).
        self.message_hook: MessageHook | None = None
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
