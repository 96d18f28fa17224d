"""The bus's dead-letter queue: events a subscriber could not handle, listable and replayable.

Two layers:

- a :class:`DeadLetterStore` keeps the entries (:class:`InMemoryDeadLetterStore`
  now; a durable, store-backed one can implement the same protocol later);
- the :class:`DeadLetterQueue` of a bus (``bus.dead_letters``) is the operator
  API on top: list, replay (one, a filter, all) and purge.

Invariant: an entry is removed from the store only once its event has been
handed back to its subscription (replay) or on purpose (purge), so an event
is never both waiting in the queue and redelivered by the same replay.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ._envelope import Envelope

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = (
    "DeadEvent",
    "DeadLetterQueue",
    "DeadLetterQueueStatistics",
    "DeadLetterStore",
    "InMemoryDeadLetterStore",
)

#: Bounds what an entry keeps of an error message (reprs can be huge).
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """One dead-lettered event: what failed, for whom, how often and why.

    ``subscriber`` is the path of the actor that failed last (for a group,
    the member the event went to); ``pattern`` and ``group`` identify the
    subscription a replay hands the event back to. ``envelope`` is the event
    as it was last handed over (its ``retry_count`` is ``attempts - 1``).
    """

    id: int
    envelope: Envelope
    pattern: str
    group: str | None
    subscriber: str
    attempts: int
    error_type: str
    error_message: str
    at: float  # trio clock

    @property
    def event_type(self) -> str:
        return self.envelope.event_type

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (payload as a bounded ``repr``)."""
        env = self.envelope
        payload = repr(env.payload)
        return {
            "id": self.id,
            "event_id": str(env.id),
            "event_type": env.event_type,
            "tenant_id": env.tenant_id,
            "payload": payload if len(payload) <= 200 else payload[:197] + "...",
            "pattern": self.pattern,
            "group": self.group,
            "subscriber": self.subscriber,
            "attempts": self.attempts,
            "error": {"type": self.error_type, "message": self.error_message},
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class DeadLetterQueueStatistics:
    """Entries now, by subscriber and by event type; totals since start."""

    size: int
    by_subscriber: dict[str, int]
    by_event_type: dict[str, int]
    added: int
    replayed: int
    purged: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (shown in ``system.tree()``)."""
        return {
            "size": self.size,
            "by_subscriber": dict(self.by_subscriber),
            "by_event_type": dict(self.by_event_type),
            "added": self.added,
            "replayed": self.replayed,
            "purged": self.purged,
        }


Predicate = Callable[[DeadEvent], bool]


class DeadLetterStore(Protocol):
    """Where dead-lettered events are kept. Methods are async so durable stores fit.

    ``statistics()`` is synchronous (the tree polls it): a durable store
    answers from counters it keeps.
    """

    async def add(
        self,
        envelope: Envelope,
        *,
        pattern: str,
        group: str | None,
        subscriber: str,
        attempts: int,
        error: BaseException,
    ) -> DeadEvent:
        """Keep one event; returns the entry with its id."""
        ...

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int | None = None,
    ) -> list[DeadEvent]:
        """Entries, oldest first, filtered by equality on the given fields."""
        ...

    async def remove(self, ids: Collection[int], *, replayed: bool) -> int:
        """Remove entries by id (unknown ids are ignored); returns how many went."""
        ...

    def statistics(self) -> DeadLetterQueueStatistics:
        """Counts now and since start."""
        ...


class InMemoryDeadLetterStore:
    """A :class:`DeadLetterStore` in a dict: lost with the process, for L0 and tests."""

    def __init__(self) -> None:
        self._entries: dict[int, DeadEvent] = {}  # insertion order = oldest first
        self._ids = itertools.count(1)
        self._added = 0
        self._replayed = 0
        self._purged = 0

    async def add(
        self,
        envelope: Envelope,
        *,
        pattern: str,
        group: str | None,
        subscriber: str,
        attempts: int,
        error: BaseException,
    ) -> DeadEvent:
        """Keep one event; see :meth:`DeadLetterStore.add`."""
        message = str(error)
        entry = DeadEvent(
            id=next(self._ids),
            envelope=envelope,
            pattern=pattern,
            group=group,
            subscriber=subscriber,
            attempts=attempts,
            error_type=type(error).__name__,
            error_message=message[:MAX_ERROR_CHARS],
            at=trio.current_time(),
        )
        self._entries[entry.id] = entry
        self._added += 1
        await trio.lowlevel.checkpoint()
        return entry

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int | None = None,
    ) -> list[DeadEvent]:
        """Entries, oldest first; see :meth:`DeadLetterStore.list`."""
        out: list[DeadEvent] = []
        for entry in self._entries.values():
            if limit is not None and len(out) >= limit:
                break
            if (
                (event_type is None or entry.event_type == event_type)
                and (subscriber is None or entry.subscriber == subscriber)
                and (group is None or entry.group == group)
            ):
                out.append(entry)
        await trio.lowlevel.checkpoint()
        return out

    async def remove(self, ids: Collection[int], *, replayed: bool) -> int:
        """Remove entries by id; see :meth:`DeadLetterStore.remove`."""
        removed = sum(1 for i in ids if self._entries.pop(i, None) is not None)
        if replayed:
            self._replayed += removed
        else:
            self._purged += removed
        await trio.lowlevel.checkpoint()
        return removed

    def statistics(self) -> DeadLetterQueueStatistics:
        """Counts by subscriber and event type, and totals since start."""
        entries = self._entries.values()
        return DeadLetterQueueStatistics(
            size=len(self._entries),
            by_subscriber=dict(Counter(e.subscriber for e in entries)),
            by_event_type=dict(Counter(e.event_type for e in entries)),
            added=self._added,
            replayed=self._replayed,
            purged=self._purged,
        )


class DeadLetterQueue:
    """The dead-lettered events of one bus (``bus.dead_letters``): list, replay, purge.

    ::

        for dead in await bus.dead_letters.list(event_type="order.paid"):
            print(dead.id, dead.subscriber, dead.attempts, dead.error_type)
        await bus.dead_letters.replay(dead.id)          # one
        await bus.dead_letters.replay_where(subscriber="/app/indexer")
        await bus.dead_letters.replay_all()
        await bus.dead_letters.purge(event_type="test.pinged")

    A replay hands the event back to the subscription it failed in (same
    pattern and group, or same subscriber), with ``retry_count`` reset to 0
    and a fresh set of attempts, and removes the entry once the subscription
    has accepted it. Entries whose subscription no longer exists stay.
    Replays and purges are serialised, so two operators cannot replay one
    entry twice.
    """

    def __init__(self, bus: EventBus, store: DeadLetterStore) -> None:
        self._bus = bus
        self.store = store
        self._lock = trio.Lock()

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int | None = None,
    ) -> list[DeadEvent]:
        """Entries, oldest first, filtered by event type, subscriber path and group."""
        return await self.store.list(
            event_type=event_type, subscriber=subscriber, group=group, limit=limit
        )

    async def replay(self, entry_id: int) -> bool:
        """Hand one entry back; False if it is unknown or its subscription is gone."""
        return await self.replay_where(lambda e: e.id == entry_id) == 1

    async def replay_where(
        self,
        predicate: Predicate | None = None,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """Hand back every entry matching the filters and ``predicate``; returns how many."""
        return await self._each(predicate, event_type, subscriber, group, self._replay_one)

    async def replay_all(self) -> int:
        """Hand back every entry (oldest first); returns how many."""
        return await self.replay_where()

    async def purge(
        self,
        predicate: Predicate | None = None,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """Drop the matching entries (all of them without filters); returns how many."""
        return await self._each(predicate, event_type, subscriber, group, self._purge_one)

    def statistics(self) -> DeadLetterQueueStatistics:
        """The store's counts (shown in ``system.tree()`` on the bus actor)."""
        return self.store.statistics()

    async def _each(
        self,
        predicate: Predicate | None,
        event_type: str | None,
        subscriber: str | None,
        group: str | None,
        action: Callable[[DeadEvent], Awaitable[bool]],
    ) -> int:
        async with self._lock:
            entries = await self.store.list(
                event_type=event_type, subscriber=subscriber, group=group
            )
            done = 0
            for entry in entries:
                if (predicate is None or predicate(entry)) and await action(entry):
                    done += 1
            return done

    async def _replay_one(self, entry: DeadEvent) -> bool:
        # Handed back first, removed after: a crash in between duplicates the
        # event (at least once) rather than losing it.
        if not await self._bus._hand_back(entry):
            return False
        await self.store.remove([entry.id], replayed=True)
        return True

    async def _purge_one(self, entry: DeadEvent) -> bool:
        return await self.store.remove([entry.id], replayed=False) == 1
