"""The Actor base class and the context an actor sees as ``self.ctx``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import ActorError
from ._ask import AskRequest
from ._mailbox import Mailbox

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._ref import ActorRef

__all__ = ("Actor", "ActorContext")


class Actor:
    """Subclass and implement :meth:`receive`; its return value answers an ``ask``.

    ::

        class Counter(Actor):
            def __init__(self) -> None:
                self.count = 0

            async def receive(self, msg):
                if msg == "incr":
                    self.count += 1
                return self.count

    An exception raised by ``receive`` crashes this incarnation: the message
    becomes a dead letter, its asker gets :class:`ActorCrashed`, and the
    supervisor restarts the actor (a fresh instance from the factory) with
    its mailbox intact.
    """

    #: Set by the runtime before ``on_start``.
    ctx: ActorContext

    async def receive(self, message: Any) -> Any:
        """Handle one message; return the reply for an ``ask``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    async def on_start(self) -> None:
        """Called before the first message of each incarnation."""

    async def on_stop(self) -> None:
        """Called after the last message of each incarnation (not when killed)."""


class ActorContext:
    """What an actor knows about its place in the system (``self.ctx``)."""

    __slots__ = ("_cell", "_nursery", "nursery_used")

    def __init__(self, cell: ActorCell, nursery: trio.Nursery) -> None:
        self._cell = cell
        self._nursery: trio.Nursery | None = nursery
        #: ``nursery`` was asked for (directly, by ``start_soon`` or by ``spawn``).
        self.nursery_used = False

    @property
    def nursery(self) -> trio.Nursery:
        """A nursery living as long as this incarnation.

        Background tasks that fail crash the actor; they are cancelled when it
        stops.  An entity whose ``on_start`` does not use it serves without
        one (a nursery costs more than a kilobyte per entity): it raises
        :class:`ActorError` there, and the region's later entities keep it.
        """
        nursery = self._nursery
        if nursery is None:
            raise self._cell.missing_nursery()
        self.nursery_used = True
        return nursery

    def release_nursery(self) -> None:
        """The incarnation closes its unused nursery (see :meth:`ActorCell.serves_bare`)."""
        self._nursery = None

    @property
    def ref(self) -> ActorRef:
        """This actor's own reference."""
        return self._cell.ref

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def system(self) -> Any:
        """The :class:`~triotok.ActorSystem` this actor lives in."""
        return self._cell.runtime.system

    def peek(self) -> Any:
        """The first message waiting in the mailbox, without taking it (``None`` if empty).

        For an ``on_start`` that can tell from the command that activated it
        whether it needs its state: an entity activated by a *create* need
        not load a row that cannot exist yet. An ask shows its message.
        """
        queue = self._cell.queue
        if not queue:
            return None
        item = queue[0]
        return item.message if type(item) is AskRequest else item

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` as a background task of this incarnation."""
        self.nursery.start_soon(fn, *args)

    async def spawn(
        self,
        factory: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        **options: Any,
    ) -> ActorRef:
        """Spawn a child actor at ``<this path>/<name>``, stopped with this incarnation."""
        spawn = self._cell.runtime.spawn_child
        if spawn is None:
            raise ActorError("this system cannot spawn child actors")
        ref: ActorRef = await spawn(self._cell, self.nursery, factory, args, name, mailbox, options)
        return ref

    async def publish(self, event: Any) -> None:
        """Publish an event (an Envelope, or a registered payload) on the system's bus.

        A bare payload is wrapped in a new envelope whose ``actor_id`` is this
        actor's path.
        """
        publisher = self._cell.runtime.publisher
        if publisher is None:
            raise ActorError("no event bus is attached to this system")
        await publisher(event, self._cell.path)

    def register(self, name: str, component: Any) -> None:
        """Show ``component.statistics()`` (a breaker, a cache) in the tree under this actor.

        Telemetry reads the same components for its metrics (and follows a
        registered breaker's transitions in traces).
        """
        cell = self._cell
        cell.components[name] = component
        hook = cell.runtime.on_register
        if hook is not None:
            hook(cell, name, component)

    def stop(self) -> None:
        """Finish this incarnation after the current message (a normal exit).

        Like an OTP worker returning normally: a ``PERMANENT`` child is
        restarted, ``TRANSIENT`` and ``TEMPORARY`` ones are not.
        """
        self._cell.request_stop()
