"""The durable dead letters of ``event_dead_letters``: the outbox relay's, and optionally the bus's.

One table, two sources (column ``source``):

- ``outbox`` rows are events the relay gave up on. :class:`EventDeadLetters`
  is their :class:`~triotok.transport.DeadLetterStore` (list, get, replay,
  purge). Invariant: such an event is in the ``outbox`` or here, never both.
  Moving it either way is one unit of work (delete from one table, insert
  into the other), so a crash in between loses nothing and duplicates
  nothing. Replay puts the original bytes back into the outbox under the
  same ``event_id``, so consumers that already applied it (inbox) skip it.
- ``bus`` rows are events a bus subscriber failed to handle, when the bus
  keeps its dead letters durably: :class:`DurableDeadLetterLog` is then the
  bus's :class:`~triotok.transport.DeadLetterLog`
  (``EventBus(dead_letters=DurableDeadLetterLog(store))``) and
  ``bus.dead_letters`` the store operators use; they survive restarts and
  every node sees them.

::

    dead = EventDeadLetters(store)
    for letter in await dead.list(event_type="order.paid"):
        print(letter.id, letter.reason, letter.error_type, letter.error_message)
    await dead.replay(letter.id)           # back into the outbox, relays wake
    await dead.purge_where(older_than=timedelta(days=30))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from .._exceptions import InvalidConfig, NotFound, SchemaError
from ..transport import (
    DeadEvent,
    DeadLetterFilter,
    DeadLetterQueueStatistics,
    Envelope,
    SchemaRegistry,
    decode,
    encode,
)
from ._source import StoreLike, current_store
from ._sql import parse_timestamp
from ._types import OutboxRow, Row

__all__ = ("DeadLetteredEvent", "DurableDeadLetterLog", "EventDeadLetters")

#: The one entry type of every dead-letter store (the name this module used for its rows).
DeadLetteredEvent = DeadEvent

# Bounds what one row keeps of an error message (tracebacks can be huge).
MAX_ERROR_CHARS = 2000
_PAGE = 500

_COLUMNS = (
    "id, source, outbox_id, event_id, event_type, tenant_id, payload, attempts, reason,"
    " error_type, error, pattern, subscription_group, subscriber, node_id, dead_at"
)


class _Table:
    """The rows of one ``source``: the queries both stores share."""

    def __init__(self, store: StoreLike, source: str, registry: SchemaRegistry | None) -> None:
        self.store = store
        self._source = source
        self._registry = registry
        self._added = 0
        self._replayed = 0
        self._purged = 0

    def _where(self, where: DeadLetterFilter, params: list[Any]) -> str:
        params.append(self._source)
        clauses = [f"source = ${len(params)}"]
        for column, value in (
            ("event_type", where.event_type),
            ("subscriber", where.subscriber),
            ("subscription_group", where.group),
        ):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        if where.older_than is not None:
            params.append(datetime.now(UTC) - where.older_than)
            clauses.append(f"dead_at < ${len(params)}")
        return " AND ".join(clauses)

    async def _list(self, where: DeadLetterFilter, limit: int, after: int) -> list[DeadEvent]:
        _check_page(limit, after)
        params: list[Any] = [after, limit]
        sql = (
            f"SELECT {_COLUMNS} FROM event_dead_letters WHERE id > $1 AND"
            f" {self._where(where, params)} ORDER BY id LIMIT $2"
        )
        rows = await (await current_store(self.store)).fetch(sql, *params)
        return [self._entry(r) for r in rows]

    async def _ids(self, where: DeadLetterFilter) -> list[int]:
        """A snapshot of the matching ids, oldest first."""
        ids: list[int] = []
        while page := await self._list(where, _PAGE, ids[-1] if ids else 0):
            ids += [e.id for e in page]
        return ids

    async def get(self, id: int) -> DeadEvent:
        """One entry by id; :class:`NotFound` if there is none (or it has the other source)."""
        row = await (await current_store(self.store)).fetchrow(
            f"SELECT {_COLUMNS} FROM event_dead_letters WHERE id = $1 AND source = $2",
            int(id),
            self._source,
        )
        if row is None:
            raise _not_found(id)
        return self._entry(row)

    async def _count(self, where: DeadLetterFilter) -> int:
        params: list[Any] = []
        sql = f"SELECT count(*) FROM event_dead_letters WHERE {self._where(where, params)}"
        return int(await (await current_store(self.store)).fetchval(sql, *params))

    async def _delete(self, ids: Collection[int]) -> int:
        async with (await current_store(self.store)).transaction() as tx:
            removed = 0
            for id in ids:
                removed += await tx.execute(
                    "DELETE FROM event_dead_letters WHERE id = $1 AND source = $2",
                    int(id),
                    self._source,
                )
        return removed

    async def statistics(self) -> DeadLetterQueueStatistics:
        """Counts of every row of this source now; what this handle did since it was created."""
        store = await current_store(self.store)
        rows = await store.fetch(
            "SELECT event_type, subscriber, count(*) AS n FROM event_dead_letters"
            " WHERE source = $1 GROUP BY event_type, subscriber",
            self._source,
        )
        by_type: Counter[str] = Counter()
        by_subscriber: Counter[str] = Counter()
        for row in rows:
            by_type[str(row["event_type"])] += int(row["n"])
            if row["subscriber"] is not None:
                by_subscriber[str(row["subscriber"])] += int(row["n"])
        return DeadLetterQueueStatistics(
            size=sum(by_type.values()),
            by_subscriber=dict(by_subscriber),
            by_event_type=dict(by_type),
            added=self._added,
            replayed=self._replayed,
            purged=self._purged,
        )

    def _entry(self, row: Row) -> DeadEvent:
        data = bytes(row["payload"])
        envelope: Envelope | None
        try:
            envelope = decode(data, registry=self._registry)
        except (SchemaError, ValueError):
            envelope = None
        error_type, message = row["error_type"], row["error"] or ""
        if error_type is None:  # written before migration 3: "Type: message"
            error_type, message = _split_error(message)
        dead_at = parse_timestamp(row["dead_at"])
        assert dead_at is not None
        outbox_id = row["outbox_id"]
        return DeadEvent(
            id=int(row["id"]),
            source=str(row["source"]),
            event_id=str(row["event_id"]),
            event_type=str(row["event_type"]),
            tenant_id=row["tenant_id"],
            envelope=envelope,
            pattern=row["pattern"],
            group=row["subscription_group"],
            subscriber=row["subscriber"],
            attempts=int(row["attempts"]),
            reason=str(row["reason"]),
            error_type=str(error_type),
            error_message=str(message),
            dead_at=dead_at,
            data=data,
            outbox_id=None if outbox_id is None else int(outbox_id),
            node_id=row["node_id"],
        )


class EventDeadLetters(_Table):
    """Events the relay gave up on, kept in the store until replayed or purged.

    A :class:`~triotok.transport.DeadLetterStore` (see its docstring for the
    contract). ``store`` is a store or a handle to one.
    """

    def __init__(self, store: StoreLike, *, registry: SchemaRegistry | None = None) -> None:
        super().__init__(store, "outbox", registry)

    async def add(
        self, row: OutboxRow, reason: str, error: str | None, *, node_id: str | None = None
    ) -> bool:
        """Move a claimed outbox row here; ``False`` if it is no longer ours to move.

        ``error`` is ``"Type: message"`` (or ``None``). With ``node_id``, only
        a row still leased to that node moves: if the lease expired and
        another relay delivered the row meanwhile, it stays delivered instead
        of turning up in both places.
        """
        error_type, message = _split_error(error or "")
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 1] + "…"
        async with (await current_store(self.store)).transaction() as tx:
            if node_id is None:
                moved = await tx.execute(
                    "DELETE FROM outbox WHERE id = $1 AND delivered_at IS NULL", row.id
                )
            else:
                moved = await tx.execute(
                    "DELETE FROM outbox WHERE id = $1 AND delivered_at IS NULL AND claimed_by = $2",
                    row.id,
                    node_id,
                )
            if moved != 1:
                return False
            await tx.execute(
                "INSERT INTO event_dead_letters (source, outbox_id, event_id, event_type,"
                " tenant_id, payload, attempts, reason, error_type, error, node_id, created_at,"
                " dead_at) VALUES ('outbox', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                row.id,
                row.event_id,
                row.event_type,
                row.tenant_id,
                row.payload,
                row.attempts,
                reason,
                error_type,
                None if error is None else message,
                node_id,
                row.created_at,
                datetime.now(UTC),
            )
        self._added += 1
        return True

    async def list(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> list[DeadEvent]:
        """Dead letters in id order, ``limit`` at a time (page with ``after``)."""
        return await self._list(DeadLetterFilter(event_type, subscriber, group), limit, after)

    async def count(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """How many dead letters match."""
        return await self._count(DeadLetterFilter(event_type, subscriber, group))

    async def replay(self, id: int) -> None:
        """Put a dead letter back into the outbox (due now, attempts reset).

        Relays are woken by the commit. Raises :class:`NotFound` if ``id``
        does not exist (already replayed or purged).
        """
        async with (await current_store(self.store)).transaction() as tx:
            row = await tx.fetchrow(
                "SELECT event_id, event_type, tenant_id, payload FROM event_dead_letters"
                " WHERE id = $1 AND source = 'outbox'",
                int(id),
            )
            if row is None:
                raise _not_found(id)
            await tx.execute("DELETE FROM event_dead_letters WHERE id = $1", int(id))
            await tx.publish(
                bytes(row["payload"]),
                event_id=str(row["event_id"]),
                event_type=str(row["event_type"]),
                tenant_id=row["tenant_id"],
            )
        self._replayed += 1

    async def replay_where(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
    ) -> int:
        """Replay every matching dead letter (a snapshot taken first); returns how many."""
        replayed = 0
        for id in await self._ids(DeadLetterFilter(event_type, subscriber, group)):
            try:
                await self.replay(id)
            except NotFound:
                continue  # replayed or purged meanwhile (another operator, another node)
            replayed += 1
        return replayed

    async def replay_all(self) -> int:
        """Replay every dead letter; returns how many."""
        return await self.replay_where()

    async def purge(self, id: int) -> None:
        """Delete one dead letter; :class:`NotFound` if there is none."""
        if await self._delete([id]) != 1:
            raise _not_found(id)
        self._purged += 1

    async def purge_where(
        self,
        *,
        event_type: str | None = None,
        subscriber: str | None = None,
        group: str | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """Delete the matching dead letters (all without filters); returns how many."""
        params: list[Any] = []
        where = self._where(DeadLetterFilter(event_type, subscriber, group, older_than), params)
        store = await current_store(self.store)
        purged = await store.execute(f"DELETE FROM event_dead_letters WHERE {where}", *params)
        self._purged += purged
        return purged


class DurableDeadLetterLog(_Table):
    """A bus's :class:`~triotok.transport.DeadLetterLog` in ``event_dead_letters`` (source ``bus``).

    Entries are encoded with the codec (``registry``, default the global
    one), so an event whose payload type is not registered cannot be kept
    here: the bus then logs the failure and counts the delivery abandoned.
    """

    def __init__(
        self,
        store: StoreLike,
        *,
        registry: SchemaRegistry | None = None,
        node_id: str | None = None,
    ) -> None:
        super().__init__(store, "bus", registry)
        self.node_id = node_id

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
        """Keep one event durably; returns the entry with its id."""
        data = encode(envelope, registry=self._registry)
        async with (await current_store(self.store)).transaction() as tx:
            id = await tx.fetchval(
                "INSERT INTO event_dead_letters (source, event_id, event_type, tenant_id,"
                " payload, attempts, reason, error_type, error, pattern, subscription_group,"
                " subscriber, node_id, created_at, dead_at) VALUES ('bus', $1, $2, $3, $4, $5,"
                " $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                str(envelope.id),
                envelope.event_type,
                envelope.tenant_id,
                data,
                attempts,
                reason,
                type(error).__name__,
                str(error)[:MAX_ERROR_CHARS],
                pattern,
                group,
                subscriber,
                self.node_id,
                envelope.timestamp,
                datetime.now(UTC),
            )
        self._added += 1
        return await self.get(int(id))

    async def list(self, where: DeadLetterFilter, *, limit: int, after: int = 0) -> list[DeadEvent]:
        """Matching entries with ``id > after``, oldest first, at most ``limit``."""
        return await self._list(where, limit, after)

    async def count(self, where: DeadLetterFilter) -> int:
        """How many entries match."""
        return await self._count(where)

    async def remove(self, ids: Collection[int], *, replayed: bool) -> int:
        """Remove entries by id (unknown ids are ignored); returns how many went."""
        removed = await self._delete(ids)
        if replayed:
            self._replayed += removed
        else:
            self._purged += removed
        return removed


def _check_page(limit: object, after: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidConfig("limit", f"must be an integer >= 1, got {limit!r}")
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidConfig("after", f"must be an integer >= 0, got {after!r}")


def _not_found(id: int) -> NotFound:
    return NotFound(f"no dead-lettered event with id {id}")


def _split_error(text: str) -> tuple[str, str]:
    """``"ValueError: bad"`` -> ``("ValueError", "bad")``; text without a type -> ``("", text)``."""
    kind, sep, message = text.partition(": ")
    if sep and kind.replace(".", "_").isidentifier():
        return kind, message
    return "", text
