"""The transport seam: how envelopes leave a publisher and reach subscribers.

Two implementations share this interface: in-memory (L0, tests and a single
process) and the transactional outbox (L1, the default: ``publish`` writes the
event row in the caller's store transaction and a relay delivers it later). A
streaming engine (L2) is planned and not built yet. The event bus, built on
actors, sits on top and is the usual (often only) subscriber.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ._envelope import Envelope

__all__ = ("EventSink", "Transport")

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
