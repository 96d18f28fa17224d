"""The bus's dead-letter queue (``bus.dead_letters``): the operator API over a bus's log.

Invariant: an entry leaves the log only after the bus accepted its event
back (replay) or on purpose (purge); replays and purges are serialised, so
two operators cannot replay one entry twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import trio

from .._exceptions import ConflictError, SchemaError
from ._codec import decode
from ._dlq import (
    DeadEvent,
    DeadLetterFilter,
    DeadLetterLog,
    DeadLetterQueueStatistics,
    InMemoryDeadLetterLog,
)

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ("DeadLetterQueue",)

Predicate = Callable[[DeadEvent], bool]
_PAGE = 500


class DeadLetterQueue:
    """The dead-lettered events of one bus: a :class:`~._dlq.DeadLetterStore`.

    ::

        for dead in await bus.dead_letters.list(event_type="order.paid"):
            print(dead.id, dead.subscriber, dead.attempts, dead.error_type)
        await bus.dead_letters.replay(dead.id)          # one (NotFound if unknown)
        await bus.dead_letters.replay_where(subscriber="/app/modules/index")
        await bus.dead_letters.replay_all()
        await bus.dead_letters.purge_where(event_type="test.pinged")

    A replay hands the event back to the subscription it failed in (same
    pattern and group, or same subscriber), with ``retry_count`` reset to 0
    and a fresh set of attempts, and removes the entry once the subscription
    has accepted it. Entries whose subscription no longer exists stay
    (``replay`` raises :class:`ConflictError`, ``replay_where`` skips them).
    Beyond the protocol, ``replay_where`` takes an optional ``predicate`` on
    the entries (in-process callers only).
    """

    def __init__(self, bus: EventBus, log: DeadLetterLog) -> None:
        self._bus = bus
        #: Where the entries are kept (in memory, or the store's durable log).
        self.log = log
        self._lock = trio.Lock()
        self._last = DeadLetterQueueStatistics(0, {}, {}, 0, 0, 0)

    @property
    def store(self) -> DeadLetterLog:
        """The log (its name before the operator API and the log split)."""
        return self.log

    # ------------------------------------------------------------------ reading

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> list[DeadEvent]:
        """Entries, oldest first, filtered by event type, subscriber path and group."""
        where = DeadLetterFilter(event_type, subscriber, group)
        return await self.log.list(where, limit=limit, after=after)

    async def get(self, id: int) -> DeadEvent:
        """One entry; :class:`NotFound` if there is none."""
        return await self.log.get(id)

    async def count(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """How many entries match."""
        return await self.log.count(DeadLetterFilter(event_type, subscriber, group))

    async def statistics(self) -> DeadLetterQueueStatistics:
        """The log's counts (also kept for the tree, see :meth:`snapshot`)."""
        self._last = await self.log.statistics()
        return self._last

    def snapshot(self) -> DeadLetterQueueStatistics:
        """The counts as of this queue's last operation, without waiting (the tree's view)."""
        if isinstance(self.log, InMemoryDeadLetterLog):
            return self.log.snapshot()
        return self._last

    # ------------------------------------------------------------------ acting

    async def replay(self, id: int) -> None:
        """Hand one entry back; :class:`NotFound` if unknown, :class:`ConflictError` if refused."""
        async with self._lock:
            entry = await self.log.get(id)
            if not await self._replay_one(entry):
                raise ConflictError(
                    f"dead-lettered event {id} was not handed back: its subscription"
                    f" ({entry.pattern!r}, {entry.group or entry.subscriber}) is gone or refused it"
                )
        await self.statistics()

    async def replay_where(
        self,
        predicate: Predicate | None = None,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """Hand back every entry matching the filters and ``predicate``; returns how many."""
        where = DeadLetterFilter(event_type, subscriber, group)
        return await self._each(where, predicate, self._replay_one)

    async def replay_all(self) -> int:
        """Hand back every entry (oldest first); returns how many."""
        return await self.replay_where()

    async def purge(self, id: int) -> None:
        """Drop one entry; :class:`NotFound` if there is none."""
        async with self._lock:
            entry = await self.log.get(id)
            await self.log.remove([entry.id], replayed=False)
        await self.statistics()

    async def purge_where(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """Drop the matching entries (all of them without filters); returns how many."""
        where = DeadLetterFilter(event_type, subscriber, group, older_than)
        return await self._each(where, None, self._purge_one)

    async def _each(
        self,
        where: DeadLetterFilter,
        predicate: Predicate | None,
        action: Callable[[DeadEvent], Awaitable[bool]],
    ) -> int:
        async with self._lock:
            entries: list[DeadEvent] = []
            after = 0
            while page := await self.log.list(where, limit=_PAGE, after=after):
                entries += page
                after = page[-1].id
            done = 0
            for entry in entries:
                if (predicate is None or predicate(entry)) and await action(entry):
                    done += 1
        await self.statistics()
        return done

    async def _replay_one(self, entry: DeadEvent) -> bool:
        envelope = entry.envelope
        if envelope is None and entry.data is not None:
            try:
                envelope = decode(entry.data, registry=self._bus._registry)
            except SchemaError:
                envelope = None
        if envelope is None:
            await trio.lowlevel.checkpoint()
            return False
        # Handed back first, removed after: a crash in between duplicates the
        # event (at least once) rather than losing it.
        if not await self._bus._hand_back(dataclasses.replace(entry, envelope=envelope)):
            return False
        await self.log.remove([entry.id], replayed=True)
        return True

    async def _purge_one(self, entry: DeadEvent) -> bool:
        return await self.log.remove([entry.id], replayed=False) == 1
