"""Dead-lettered events: one entry type and one operator API for every place that keeps them.

Two seams, both ``typing.Protocol``:

- :class:`DeadLetterStore` is what operators use (``/system/event-dead-letters``,
  the docs, scripts): ``list``/``get``/``count`` with the same filters and
  paging, ``replay``/``purge`` of one entry (:class:`NotFound` for an unknown
  id) or of every matching entry, and ``statistics()``. The bus's queue
  (:class:`DeadLetterQueue`, ``bus.dead_letters``) implements it, and so does
  the outbox relay's durable table (``triotok.store.EventDeadLetters``).
- :class:`DeadLetterLog` is where the bus keeps its entries:
  :class:`InMemoryDeadLetterLog` (the default, lost with the process) or the
  store's ``DurableDeadLetterLog`` (rows of ``event_dead_letters`` with
  source ``bus``). The queue adds what needs the bus: replay hands an entry
  back to the subscription it failed in.

Invariant: an entry is removed only once its event has been handed back to
its subscription (replay) or on purpose (purge), so an event is never both
waiting in the queue and redelivered by the same replay.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import trio

from .._exceptions import InvalidConfig, NotFound
from ._envelope import Envelope

__all__ = (
    "DeadEvent",
    "DeadLetterFilter",
    "DeadLetterLog",
    "DeadLetterQueueStatistics",
    "DeadLetterStore",
    "InMemoryDeadLetterLog",
    "InMemoryDeadLetterStore",
)

#: Bounds what an entry keeps of an error message (reprs and tracebacks can be huge).
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """One dead-lettered event, wherever it is kept: what failed, where, how often and why.

    ``source`` says who gave up on it: ``"bus"`` (a subscriber failed to
    handle it; ``pattern``, ``group`` and ``subscriber`` name the
    subscription a replay hands it back to) or ``"outbox"`` (the relay could
    not hand it to the bus at all; those three are ``None``). ``envelope``
    is the event as last handed over, ``None`` only when its stored bytes
    cannot be decoded; ``data`` is those bytes where the entry is kept
    encoded (durable stores), else ``None``. ``reason`` is ``"permanent"``,
    ``"max_attempts"`` or (outbox) ``"undecodable"``.
    """

    id: int
    source: str
    event_id: str
    event_type: str
    tenant_id: str | None
    envelope: Envelope | None
    pattern: str | None
    group: str | None
    subscriber: str | None
    attempts: int
    reason: str
    error_type: str
    error_message: str
    dead_at: datetime
    data: bytes | None = None
    outbox_id: int | None = None
    node_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of every entry, either source (payload as a bounded ``repr``)."""
        payload = None if self.envelope is None else repr(self.envelope.payload)
        if payload is not None and len(payload) > 200:
            payload = payload[:197] + "..."
        return {
            "id": self.id,
            "source": self.source,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "tenant_id": self.tenant_id,
            "payload": payload,
            "payload_bytes": None if self.data is None else len(self.data),
            "pattern": self.pattern,
            "group": self.group,
            "subscriber": self.subscriber,
            "attempts": self.attempts,
            "reason": self.reason,
            "error": {"type": self.error_type, "message": self.error_message},
            "outbox_id": self.outbox_id,
            "node_id": self.node_id,
            "dead_at": self.dead_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which entries an operation means: equality on each given field, ``None`` = any.

    ``older_than`` keeps entries dead for longer than that (purges by age).
    Outbox entries have no subscriber or group, so filtering on them
    matches none of those.
    """

    event_type: str | None = None
    subscriber: str | None = None
    group: str | None = None
    older_than: timedelta | None = None

    def matches(self, entry: DeadEvent, now: datetime) -> bool:
        """Whether ``entry`` passes (``now`` is the wall clock for ``older_than``)."""
        return (
            (self.event_type is None or entry.event_type == self.event_type)
            and (self.subscriber is None or entry.subscriber == self.subscriber)
            and (self.group is None or entry.group == self.group)
            and (self.older_than is None or entry.dead_at < now - self.older_than)
        )


@dataclass(frozen=True, slots=True)
class DeadLetterQueueStatistics:
    """Entries now, by subscriber and by event type; what this handle did since it was created.

    ``size`` and the ``by_*`` counts describe every entry of the store (for a
    durable one, those of all processes); ``added``, ``replayed`` and
    ``purged`` count what went through this handle in this process.
    """

    size: int
    by_subscriber: dict[str, int]
    by_event_type: dict[str, int]
    added: int
    replayed: int
    purged: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (shown in ``system.tree()`` on the bus actor)."""
        return {
            "size": self.size,
            "by_subscriber": dict(self.by_subscriber),
            "by_event_type": dict(self.by_event_type),
            "added": self.added,
            "replayed": self.replayed,
            "purged": self.purged,
        }


class DeadLetterStore(Protocol):
    """The operator API of dead-lettered events; the bus's queue and the outbox's table have it.

    Entries come oldest first (ascending ``id``), ``limit`` at a time; page
    with ``after`` (the last id seen). Filters are equality on the given
    fields. ``get``, ``replay`` and ``purge`` of an unknown id raise
    :class:`~triotok.store.NotFound`; a bus entry that cannot be handed back
    now (its subscription is gone, or refused it) raises
    :class:`~triotok.store.ConflictError` and stays. The ``*_where`` forms
    act on a snapshot of the matching entries (what is dead-lettered again
    meanwhile waits for the next call), skip entries they cannot hand back,
    and return how many they did.
    """

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> list[DeadEvent]:
        """Matching entries with ``id > after``, oldest first, at most ``limit``."""
        ...

    async def get(self, id: int) -> DeadEvent:
        """One entry by id."""
        ...

    async def count(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """How many entries match."""
        ...

    async def replay(self, id: int) -> None:
        """Hand one entry's event back for another try, attempts reset; the entry goes."""
        ...

    async def replay_where(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """Replay every matching entry (all of them without filters)."""
        ...

    async def replay_all(self) -> int:
        """Replay every entry."""
        ...

    async def purge(self, id: int) -> None:
        """Drop one entry for good."""
        ...

    async def purge_where(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """Drop every matching entry (all of them without filters)."""
        ...

    async def statistics(self) -> DeadLetterQueueStatistics:
        """Counts now (from the store) and what this handle did."""
        ...


class DeadLetterLog(Protocol):
    """Where a bus keeps its dead-lettered events (in memory, or durably in the store)."""

    async def add(
        self,
        envelope: Envelope,
        *,
        pattern: str,
        group: str | None,
        subscriber: str,
        attempts: int,
        error: BaseException,
        reason: str = "permanent",
    ) -> DeadEvent:
        """Keep one event; returns the entry with its id."""
        ...

    async def list(self, where: DeadLetterFilter, *, limit: int, after: int = 0) -> list[DeadEvent]:
        """Matching entries with ``id > after``, oldest first, at most ``limit``."""
        ...

    async def get(self, id: int) -> DeadEvent:
        """One entry by id; :class:`NotFound` if there is none."""
        ...

    async def count(self, where: DeadLetterFilter) -> int:
        """How many entries match."""
        ...

    async def remove(self, ids: Collection[int], *, replayed: bool) -> int:
        """Remove entries by id (unknown ids are ignored); returns how many went."""
        ...

    async def statistics(self) -> DeadLetterQueueStatistics:
        """Counts now and what went through this log."""
        ...


def check_page(limit: object, after: object) -> None:
    """Refuse a ``limit`` below 1 or a negative ``after`` (both must be ints)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidConfig("limit", f"must be an integer >= 1, got {limit!r}")
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidConfig("after", f"must be an integer >= 0, got {after!r}")


def not_found(id: int) -> NotFound:
    """The error for an unknown entry id (one message everywhere)."""
    return NotFound(f"no dead-lettered event with id {id}")


class InMemoryDeadLetterLog:
    """A :class:`DeadLetterLog` in a dict: lost with the process, for L0 and tests."""

    def __init__(self) -> None:
        self._entries: dict[int, DeadEvent] = {}  # insertion order = id order = oldest first
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
        reason: str = "permanent",
    ) -> DeadEvent:
        """Keep one event; see :meth:`DeadLetterLog.add`."""
        entry = DeadEvent(
            id=next(self._ids),
            source="bus",
            event_id=str(envelope.id),
            event_type=envelope.event_type,
            tenant_id=envelope.tenant_id,
            envelope=envelope,
            pattern=pattern,
            group=group,
            subscriber=subscriber,
            attempts=attempts,
            reason=reason,
            error_type=type(error).__name__,
            error_message=str(error)[:MAX_ERROR_CHARS],
            dead_at=datetime.now(UTC),
        )
        self._entries[entry.id] = entry
        self._added += 1
        await trio.lowlevel.checkpoint()
        return entry

    async def list(self, where: DeadLetterFilter, *, limit: int, after: int = 0) -> list[DeadEvent]:
        """Matching entries, oldest first; see :meth:`DeadLetterLog.list`."""
        check_page(limit, after)
        now = datetime.now(UTC)
        out: list[DeadEvent] = []
        for entry in self._entries.values():
            if len(out) >= limit:
                break
            if entry.id > after and where.matches(entry, now):
                out.append(entry)
        await trio.lowlevel.checkpoint()
        return out

    async def get(self, id: int) -> DeadEvent:
        """One entry by id; see :meth:`DeadLetterLog.get`."""
        await trio.lowlevel.checkpoint()
        entry = self._entries.get(id)
        if entry is None:
            raise not_found(id)
        return entry

    async def count(self, where: DeadLetterFilter) -> int:
        """How many entries match."""
        now = datetime.now(UTC)
        await trio.lowlevel.checkpoint()
        return sum(1 for e in self._entries.values() if where.matches(e, now))

    async def remove(self, ids: Collection[int], *, replayed: bool) -> int:
        """Remove entries by id; see :meth:`DeadLetterLog.remove`."""
        removed = sum(1 for i in ids if self._entries.pop(i, None) is not None)
        if replayed:
            self._replayed += removed
        else:
            self._purged += removed
        await trio.lowlevel.checkpoint()
        return removed

    async def statistics(self) -> DeadLetterQueueStatistics:
        """Counts by subscriber and event type, and totals since start."""
        await trio.lowlevel.checkpoint()
        return self.snapshot()

    def snapshot(self) -> DeadLetterQueueStatistics:
        """:meth:`statistics` without waiting (exact: everything is here)."""
        entries = self._entries.values()
        return DeadLetterQueueStatistics(
            size=len(self._entries),
            by_subscriber=dict(Counter(e.subscriber for e in entries if e.subscriber)),
            by_event_type=dict(Counter(e.event_type for e in entries)),
            added=self._added,
            replayed=self._replayed,
            purged=self._purged,
        )


#: The name :class:`InMemoryDeadLetterLog` had before the operator API and the log split.
InMemoryDeadLetterStore = InMemoryDeadLetterLog
