"""Effectively-once consumers: the inbox row and the effect commit together.

At-least-once delivery means a consumer sees some events twice (a relay died
after delivering, a lease expired, a dead letter was replayed). A consumer
whose effect lives in the store makes the second delivery a no-op by recording
``(consumer, event_id)`` in the ``inbox`` table in the transaction of the
effect: both commit or neither does, and a redelivery finds the record.

::

    @idempotent(store, "order-projector")
    async def project(tx: UnitOfWork, envelope: Envelope) -> None:
        await tx.execute("UPDATE order_totals SET n = n + 1 WHERE tenant_id = $1",
                         envelope.tenant_id)

    await transport.subscribe("order-projector", project)   # an EventSink

The handler must do all its writes through ``tx`` (and publish follow-up
events with ``tx.publish``); work outside the transaction (an e-mail, an HTTP
call) is not covered and needs its own idempotency key (the event id).
Across nodes, ``consumer`` names a consumer *group*: the same name on every
node means each event is applied once in the cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from .._util import validate_name
from ..transport import Envelope
from ._source import StoreLike, current_store
from ._types import UnitOfWork

__all__ = ("InboxConsumer", "InboxHandler", "InboxStatistics", "idempotent")

InboxHandler = Callable[[UnitOfWork, Envelope], Awaitable[None]]
"""Applies one event's effect through the given unit of work."""


@dataclass(frozen=True, slots=True)
class InboxStatistics:
    """``applied``: first deliveries whose effect committed; ``duplicates``: skipped."""

    consumer: str
    applied: int
    duplicates: int
    failed: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON and the tree."""
        return asdict(self)


class InboxConsumer:
    """An :data:`~triotok.transport.EventSink` applying ``handler`` once per event id.

    Calling it opens a unit of work, records ``(consumer, envelope.id)`` in
    the inbox and, the first time only, runs ``handler(tx, envelope)`` in the
    same transaction. If the handler raises, the transaction (inbox record
    included) rolls back and the exception propagates, so the event is
    delivered again later. Concurrent deliveries of one event (two nodes)
    serialise on the inbox key: the second waits for the first to commit and
    then skips.
    """

    def __init__(self, store: StoreLike, consumer: str, handler: InboxHandler) -> None:
        self.consumer = validate_name("consumer", consumer)
        self.handler = handler
        self._source = store
        self._applied = 0
        self._duplicates = 0
        self._failed = 0

    async def __call__(self, envelope: Envelope) -> None:
        """Apply ``envelope`` unless this consumer already did."""
        store = await current_store(self._source)
        try:
            async with store.transaction() as tx:
                first = await tx.inbox_seen(self.consumer, str(envelope.id))
                if first:
                    await self.handler(tx, envelope)
        except Exception:
            self._failed += 1
            raise
        if first:
            self._applied += 1
        else:
            self._duplicates += 1

    def statistics(self) -> InboxStatistics:
        """Counters since creation (this process only)."""
        return InboxStatistics(self.consumer, self._applied, self._duplicates, self._failed)


def idempotent(store: StoreLike, consumer: str) -> Callable[[InboxHandler], InboxConsumer]:
    """Decorator form of :class:`InboxConsumer` (see the module docstring)."""

    def wrap(handler: InboxHandler) -> InboxConsumer:
        return InboxConsumer(store, consumer, handler)

    return wrap
