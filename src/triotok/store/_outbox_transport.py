"""L1: the transactional-outbox transport, the ``Transport`` seam over the store.

``publish`` writes an outbox row; an :class:`~triotok.store.OutboxRelay`
given :meth:`OutboxTransport.deliver` as its sink hands each committed row to
the subscribers of this process. The event bus subscribes the same way to
this transport as to ``InMemoryTransport``::

    transport = OutboxTransport(store)
    await transport.subscribe("bus", bus.deliver)
    await system.spawn(OutboxRelay, store, transport.deliver, name="relay")
    await transport.publish(envelope)          # its own unit of work

Code that changes data publishes inside its own unit of work instead
(``await tx.publish(envelope)``), which is the point of the outbox.

Differences from L0 a subscriber should know: delivery is asynchronous (after
commit, by whichever node's relay claims the row), at least once, and per
row rather than per subscriber: if one subscriber raises, the row is retried
for all of them, so every subscriber must tolerate redelivery (the inbox).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from .._exceptions import InvalidConfig
from ..transport import Envelope, EventSink
from ._source import StoreLike, current_store

__all__ = ("OutboxTransport", "OutboxTransportStatistics")


@dataclass(frozen=True, slots=True)
class OutboxTransportStatistics:
    """Subscribers now; envelopes published through this object and delivered to sinks."""

    subscribers: int
    published: int
    delivered: int


class OutboxTransport:
    """Publishes envelopes as outbox rows; delivers relayed rows to local subscribers."""

    def __init__(self, store: StoreLike) -> None:
        self._source = store
        self._sinks: dict[str, EventSink] = {}
        self._subscribed = trio.Event()
        self._published = 0
        self._delivered = 0

    async def publish(self, envelope: Envelope) -> None:
        """Write ``envelope`` to the outbox in its own transaction; returns once committed."""
        store = await current_store(self._source)
        async with store.transaction() as tx:
            await tx.publish(envelope)
        self._published += 1

    async def subscribe(self, name: str, sink: EventSink) -> None:
        """Add ``sink`` under ``name``; :class:`InvalidConfig` if the name is taken."""
        if name in self._sinks:
            raise InvalidConfig("name", f"subscriber {name!r} already exists")
        self._sinks[name] = sink
        self._subscribed.set()

    async def unsubscribe(self, name: str) -> None:
        """Remove the subscriber called ``name`` (no error if absent)."""
        self._sinks.pop(name, None)
        if not self._sinks:
            self._subscribed = trio.Event()

    async def deliver(self, envelope: Envelope) -> None:
        """The relay's sink: hand ``envelope`` to every subscriber, in subscription order.

        Waits while there is no subscriber, so a relay that starts before the
        bus subscribed does not acknowledge events to nobody (its lease may
        expire meanwhile; another relay then delivers them, at least once).
        An exception from a subscriber propagates, and the relay retries the
        row later for every subscriber.
        """
        while not self._sinks:
            await self._subscribed.wait()
        # A snapshot: (un)subscribing during delivery affects later envelopes only.
        for sink in list(self._sinks.values()):
            await sink(envelope)
            self._delivered += 1

    def statistics(self) -> OutboxTransportStatistics:
        """Counters since creation."""
        return OutboxTransportStatistics(len(self._sinks), self._published, self._delivered)
