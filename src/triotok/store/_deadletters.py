"""The durable dead-letter table of the outbox relay: list, replay, purge.

Invariant: an event is in the ``outbox`` or in ``event_dead_letters``, never
both. Moving it either way is one unit of work (delete from one table,
insert into the other), so a crash in between loses nothing and duplicates
nothing. Replay puts the original bytes back into the outbox under the same
``event_id``, so consumers that already applied it (inbox) skip it.

::

    dead = EventDeadLetters(store)
    for letter in await dead.list(event_type="order.paid"):
        print(letter.id, letter.reason, letter.error)
    await dead.replay(letter.id)           # back into the outbox, relays wake
    await dead.purge(older_than=timedelta(days=30))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .._exceptions import InvalidConfig, NotFound
from ._sql import parse_timestamp
from ._types import OutboxRow, Row, Store

__all__ = ("DeadLetteredEvent", "EventDeadLetters")

# Bounds what one row keeps of an error message (tracebacks can be huge).
MAX_ERROR_CHARS = 2000

_COLUMNS = (
    "id, outbox_id, event_id, event_type, tenant_id, payload, attempts, reason, error,"
    " node_id, created_at, dead_at"
)


@dataclass(frozen=True, slots=True)
class DeadLetteredEvent:
    """One row of ``event_dead_letters``; ``payload`` is the encoded envelope."""

    id: int
    outbox_id: int
    event_id: str
    event_type: str
    tenant_id: str | None
    payload: bytes
    attempts: int
    reason: str
    error: str | None
    node_id: str | None
    created_at: datetime
    dead_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> DeadLetteredEvent:
        """Build from a raw row of either backend."""
        created = parse_timestamp(row["created_at"])
        dead = parse_timestamp(row["dead_at"])
        assert created is not None
        assert dead is not None
        return cls(
            id=int(row["id"]),
            outbox_id=int(row["outbox_id"]),
            event_id=str(row["event_id"]),
            event_type=str(row["event_type"]),
            tenant_id=row["tenant_id"],
            payload=bytes(row["payload"]),
            attempts=int(row["attempts"]),
            reason=str(row["reason"]),
            error=row["error"],
            node_id=row["node_id"],
            created_at=created,
            dead_at=dead,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the payload bytes (size given instead)."""
        return {
            "id": self.id,
            "outbox_id": self.outbox_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "tenant_id": self.tenant_id,
            "payload_bytes": len(self.payload),
            "attempts": self.attempts,
            "reason": self.reason,
            "error": self.error,
            "node_id": self.node_id,
            "created_at": self.created_at.isoformat(),
            "dead_at": self.dead_at.isoformat(),
        }


class EventDeadLetters:
    """Events the relay gave up on, kept in the store until replayed or purged."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(
        self, row: OutboxRow, reason: str, error: str | None, *, node_id: str | None = None
    ) -> bool:
        """Move a claimed outbox row here; ``False`` if it is no longer ours to move.

        With ``node_id``, only a row still leased to that node moves: if the
        lease expired and another relay delivered the row meanwhile, it stays
        delivered instead of turning up in both places.
        """
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        async with self.store.transaction() as tx:
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
                "INSERT INTO event_dead_letters (outbox_id, event_id, event_type, tenant_id,"
                " payload, attempts, reason, error, node_id, created_at, dead_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                row.id,
                row.event_id,
                row.event_type,
                row.tenant_id,
                row.payload,
                row.attempts,
                reason,
                error,
                node_id,
                row.created_at,
                datetime.now(UTC),
            )
        return True

    async def list(
        self, *, limit: int = 100, after_id: int = 0, event_type: str | None = None
    ) -> list[DeadLetteredEvent]:
        """Dead letters in id order, ``limit`` at a time (page with ``after_id``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidConfig("limit", f"must be an integer >= 1, got {limit!r}")
        if event_type is None:
            rows = await self.store.fetch(
                f"SELECT {_COLUMNS} FROM event_dead_letters WHERE id > $1 ORDER BY id LIMIT $2",
                int(after_id),
                limit,
            )
        else:
            rows = await self.store.fetch(
                f"SELECT {_COLUMNS} FROM event_dead_letters WHERE id > $1 AND event_type = $3"
                " ORDER BY id LIMIT $2",
                int(after_id),
                limit,
                event_type,
            )
        return [DeadLetteredEvent.from_row(r) for r in rows]

    async def get(self, id: int) -> DeadLetteredEvent:
        """One dead letter by id; :class:`NotFound` if there is none."""
        row = await self.store.fetchrow(
            f"SELECT {_COLUMNS} FROM event_dead_letters WHERE id = $1", int(id)
        )
        if row is None:
            raise NotFound(f"no dead-lettered event with id {id}")
        return DeadLetteredEvent.from_row(row)

    async def count(self) -> int:
        """How many dead letters there are."""
        return int(await self.store.fetchval("SELECT count(*) FROM event_dead_letters"))

    async def replay(self, id: int) -> int:
        """Put a dead letter back into the outbox (due now, attempts reset); return its new id.

        Relays are woken by the commit. Raises :class:`NotFound` if ``id``
        does not exist (already replayed or purged).
        """
        async with self.store.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT event_id, event_type, tenant_id, payload FROM event_dead_letters"
                " WHERE id = $1",
                int(id),
            )
            if row is None:
                raise NotFound(f"no dead-lettered event with id {id}")
            await tx.execute("DELETE FROM event_dead_letters WHERE id = $1", int(id))
            return await tx.publish(
                bytes(row["payload"]),
                event_id=str(row["event_id"]),
                event_type=str(row["event_type"]),
                tenant_id=row["tenant_id"],
            )

    async def purge(
        self, ids: Sequence[int] | None = None, *, older_than: datetime | timedelta | None = None
    ) -> int:
        """Delete the given dead letters, or those dead before a cutoff; return how many.

        Exactly one of ``ids`` and ``older_than`` is required.
        """
        if (ids is None) == (older_than is None):
            raise InvalidConfig("ids", "give either ids or older_than")
        if ids is not None:
            async with self.store.transaction() as tx:
                purged = 0
                for id in ids:
                    purged += await tx.execute(
                        "DELETE FROM event_dead_letters WHERE id = $1", int(id)
                    )
                return purged
        assert older_than is not None
        cutoff = older_than if isinstance(older_than, datetime) else datetime.now(UTC) - older_than
        return await self.store.execute("DELETE FROM event_dead_letters WHERE dead_at < $1", cutoff)
