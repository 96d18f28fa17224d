"""L0: the in-memory transport, for tests and single-process deployments."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import InvalidConfig
from ._codec import DEFAULT_MAX_SIZE, decode, encode
from ._envelope import Envelope
from ._registry import SchemaRegistry
from ._transport import EventSink

__all__ = ("InMemoryTransport", "TransportStatistics")


@dataclass(frozen=True, slots=True)
class TransportStatistics:
    """A snapshot of a transport's counters."""

    subscribers: int
    published: int
    delivered: int


class InMemoryTransport:
    """Delivers each published envelope to every subscriber, in subscription order.

    ``publish`` awaits each sink in turn, so envelopes reach every subscriber
    in publish order and an exception from a sink propagates to the publisher.

    A subscriber may name an event type ``prefix`` (``"tenant."``): it then
    receives only those envelopes, and :meth:`wants` lets a publisher that
    holds encoded events (the outbox feed) skip decoding the ones nobody takes.

    With ``strict=True`` every envelope is encoded on publish and each sink
    receives its own decoded copy, exactly as if it had crossed a process
    boundary: a payload that cannot travel fails in tests, and a subscriber
    never shares mutable payload state with the publisher. The test suite runs
    this transport strictly.

    ::

        transport = InMemoryTransport(strict=True)
        await transport.subscribe("audit", handle)
        await transport.publish(Envelope.new(ProductCreated(sku="a-1")))
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        registry: SchemaRegistry | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.strict = strict
        self._registry = registry
        self._max_size = max_size
        self._sinks: dict[str, tuple[EventSink, str]] = {}
        self._published = 0
        self._delivered = 0

    async def publish(self, envelope: Envelope) -> None:
        """Deliver ``envelope`` to every current subscriber (see the class docstring)."""
        data = None
        if self.strict:
            # Encoded before any delivery: an unencodable event reaches nobody.
            data = encode(envelope, registry=self._registry, max_size=self._max_size)
        self._published += 1
        # A snapshot, so a sink (un)subscribing during delivery affects only
        # later envelopes.
        event_type = envelope.event_type
        for sink, prefix in list(self._sinks.values()):
            if not event_type.startswith(prefix):
                continue
            if data is not None:
                delivered = decode(data, registry=self._registry, max_size=self._max_size)
            else:
                delivered = envelope
            await sink(delivered)
            self._delivered += 1

    async def subscribe(self, name: str, sink: EventSink, *, prefix: str = "") -> None:
        """Add ``sink`` under ``name`` for the event types starting with ``prefix`` (all: "").

        InvalidConfig if the name is taken.
        """
        if name in self._sinks:
            raise InvalidConfig("name", f"subscriber {name!r} already exists")
        self._sinks[name] = (sink, prefix)

    def wants(self, event_type: str) -> bool:
        """Whether any current subscriber takes events of ``event_type``."""
        return any(event_type.startswith(prefix) for _, prefix in self._sinks.values())

    async def unsubscribe(self, name: str) -> None:
        """Remove the subscriber called ``name`` (no error if absent)."""
        self._sinks.pop(name, None)

    def statistics(self) -> TransportStatistics:
        """Counters since creation: subscribers now, envelopes published and delivered."""
        return TransportStatistics(len(self._sinks), self._published, self._delivered)
