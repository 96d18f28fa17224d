"""The transport seam: how envelopes leave a publisher and reach subscribers.

Three implementations share this interface: in-memory (L0, tests and a single
process), the transactional outbox (L1, the default: ``publish`` writes the
event row in the caller's store transaction and a relay delivers it later)
and NATS JetStream (L2: the relay forwards outbox rows to a stream that any
number of nodes consume). The event bus, built on actors, sits on top and is
the usual (often only) subscriber.

A transport with consumer groups (L2) also implements :class:`GroupTransport`:
the bus then gives each of its subscriptions its own consumer instead of
subscribing once for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ._envelope import Envelope

if TYPE_CHECKING:
    from ._subscription import Ticket

__all__ = ("ConsumerGroup", "EventSink", "GroupSink", "GroupTransport", "Transport")

EventSink = Callable[[Envelope], Awaitable[None]]
"""An async callable receiving each delivered envelope.

Returning normally acknowledges the envelope. Raising means "not handled":
an in-memory transport propagates the error to the publisher, durable
transports (L1) deliver the envelope again later. Subscribers that want
per-handler retries and dead letters (the bus) must handle those themselves
and only raise for failures of their own machinery.
"""


class Transport(Protocol):
    """Publishes envelopes and delivers them to named subscribers.

    Delivery is at least once and, per subscriber, in publish order. The
    subscriber ``name`` is durable on L1 (it keys the delivery position),
    so a restarted process resumes where the previous one stopped.
    """

    async def publish(self, envelope: Envelope) -> None:
        """Hand ``envelope`` to the transport; it returns once the transport owns it.

        For L0 that means delivered to every subscriber, for L1 written in the
        current store transaction.
        """
        ...

    async def subscribe(self, name: str, sink: EventSink) -> None:
        """Deliver every envelope published from now on to ``sink`` under ``name``.

        A name already subscribed raises :class:`InvalidConfig`.
        """
        ...

    async def unsubscribe(self, name: str) -> None:
        """Stop delivering to ``name``; unknown names are ignored."""
        ...


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    """What a bus subscription asks of a :class:`GroupTransport`: a consumer over ``pattern``.

    ``durable``: a group's consumer, shared by its nodes and kept by the
    server under ``name``; otherwise a per-process consumer that starts with
    new events and is forgotten once the process is gone.
    """

    name: str
    pattern: str
    group: str | None
    durable: bool = True


class GroupSink(Protocol):
    """The bus's side of one consumer: queue events in order, settle, give up."""

    async def offer(self, envelope: Envelope) -> Ticket | None:
        """Queue ``envelope`` (calls come in stream order); the ticket settles once handled.

        ``None``: nothing is owed (no subscriber any more). A settled ticket
        with an ``error`` means the event must come again later.
        """
        ...

    async def give_up(self, envelope: Envelope, deliveries: int) -> None:
        """Dead-letter an event delivered ``deliveries`` times without an outcome."""
        ...

    def nak_delay(self, deliveries: int) -> float:
        """Seconds before an unfinished event is delivered again (the bus's backoff)."""
        ...


class GroupTransport(Transport, Protocol):
    """A :class:`Transport` whose subscribers are consumer groups (L2)."""

    async def subscribe_group(self, spec: ConsumerGroup, sink: GroupSink) -> None:
        """Consume ``spec``'s events into ``sink``; a name already subscribed is refused."""
        ...

    async def unsubscribe_group(self, name: str) -> None:
        """Stop consuming ``name`` on this node (a durable consumer stays on the server)."""
        ...
