"""The event bus's supervised actor, and ``open_event_bus`` to run one for a block.

The :class:`~._bus.EventBus` handle keeps the subscription table across
restarts; each incarnation of :class:`BusActor` spawns one subscription actor
per entry of that table as its child.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..actors import Actor
from ..resilience import RetryPolicy
from ._bus import DEFAULT_LANES, RECONCILE, EventBus
from ._dlq import DeadLetterLog, DeadLetterQueueStatistics
from ._dlq_queue import DeadLetterQueue
from ._registry import SchemaRegistry
from ._subscription import SubscriptionActor
from ._transport import Transport

__all__ = ("BusActor", "open_event_bus")


class _TreeView:
    """What the tree polls (synchronously): the queue's counts as of its last operation."""

    def __init__(self, queue: DeadLetterQueue) -> None:
        self._queue = queue

    def statistics(self) -> DeadLetterQueueStatistics:
        return self._queue.snapshot()


class BusActor(Actor):
    """The supervised actor of an :class:`EventBus`: owns the subscription actors.

    Run it with ``bus.child_spec()`` under a supervisor, or through
    :func:`open_event_bus`. Each incarnation spawns every subscription of the
    table as a child and registers the bus and its dead-letter queue as tree
    components; deliveries wait (up to ``retry.timeout``) while it restarts.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def on_start(self) -> None:
        bus = self._bus
        self.ctx.register("bus", bus)
        self.ctx.register("dead_letter_queue", _TreeView(bus.dead_letters))
        await bus._started(self)
        await self._reconcile()
        self.ctx.start_soon(self._watch)
        bus._running(self)

    async def receive(self, message: Any) -> Any:
        if message == RECONCILE:
            await self._reconcile()
            return None
        raise ValueError(f"unknown message {message!r}")

    async def on_stop(self) -> None:
        self._bus._stopped(self)
        await trio.lowlevel.checkpoint()

    async def _watch(self) -> None:
        # Also runs when the incarnation is killed (cancelled without on_stop).
        try:
            await trio.sleep_forever()
        finally:
            self._bus._stopped(self)

    async def _reconcile(self) -> None:
        """Make the children match the table: stop removed subscriptions, spawn new ones."""
        bus = self._bus
        while bus._retiring:
            sub = bus._retiring.pop(0)
            ref, sub.ref = sub.ref, None
            if ref is not None and sub.owner is self:
                await ref.stop()
        for sub in list(bus._subs.values()):
            if sub.owner is self:
                continue
            sub.ref = None
            ref = await self.ctx.spawn(
                SubscriptionActor, bus, sub, name=sub.name, mailbox=sub.mailbox, shutdown=0
            )
            sub.ref, sub.path, sub.owner = ref, ref.path, self


@asynccontextmanager
async def open_event_bus(
    system: Any,
    *,
    transport: Transport | None = None,
    retry: RetryPolicy | None = None,
    name: str = "bus",
    strict: bool | None = None,
    lanes: int = DEFAULT_LANES,
    dead_letters: DeadLetterLog | None = None,
    registry: SchemaRegistry | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[EventBus]:
    """Run an :class:`EventBus` as ``/<system>/<name>`` for the duration of the block.

    ``system`` is an :class:`~triotok.ActorSystem` or a test system; with
    ``strict=None`` the bus is strict when the system is (a
    :func:`~triotok.testing.open_test_system` is by default). Leaving the
    block stops the bus actor and detaches the bus from the transport.

    ::

        async with open_test_system() as system, open_event_bus(system) as bus:
            ref = await system.spawn(Indexer, name="indexer")
            await bus.subscribe("product.*", ref)
            await bus.publish(Envelope.new(ProductCreated(sku="a-1")))
    """
    if strict is None:
        strict = bool(getattr(system, "strict", False))
    bus = EventBus(
        transport=transport,
        retry=retry,
        name=name,
        strict=strict,
        lanes=lanes,
        dead_letters=dead_letters,
        registry=registry,
        rng=rng,
    )
    ref = await system.spawn(BusActor, bus, name=name)
    try:
        yield bus
    finally:
        with trio.CancelScope(shield=True):
            await ref.stop()
            await bus.aclose()
