"""The store seam: protocols every backend satisfies, and the values they return."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._sql import parse_timestamp

if TYPE_CHECKING:
    from ._wakeups import Wakeups

__all__ = (
    "OUTBOX_CHANNEL",
    "Backend",
    "OutboxRow",
    "Row",
    "Store",
    "StoreStatistics",
    "UnitOfWork",
)

#: The notification channel ``tx.publish`` wakes (``NOTIFY`` on PostgreSQL).
OUTBOX_CHANNEL = "triotok_outbox"

Backend = Literal["sqlite", "postgresql"]

#: A result row: column name -> value (a plain ``dict`` on both backends).
Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row as a relay sees it after claiming it.

    ``payload`` is the encoded envelope (CBOR). ``attempts`` counts claims,
    so a row that keeps crashing its relay is visible even if the relay never
    got to call ``mark_failed``.
    """

    id: int
    event_id: str
    event_type: str
    tenant_id: str | None
    payload: bytes
    created_at: datetime
    available_at: datetime
    attempts: int
    delivered_at: datetime | None
    claimed_by: str | None
    claimed_until: datetime | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row) -> OutboxRow:
        """Build from a raw row of either backend (SQLite returns timestamps as text)."""
        created = parse_timestamp(row["created_at"])
        available = parse_timestamp(row["available_at"])
        assert created is not None
        assert available is not None
        return cls(
            id=int(row["id"]),
            event_id=str(row["event_id"]),
            event_type=str(row["event_type"]),
            tenant_id=row["tenant_id"],
            payload=bytes(row["payload"]),
            created_at=created,
            available_at=available,
            attempts=int(row["attempts"]),
            delivered_at=parse_timestamp(row["delivered_at"]),
            claimed_by=row["claimed_by"],
            claimed_until=parse_timestamp(row["claimed_until"]),
            last_error=row["last_error"],
        )


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """A snapshot of a store's load, the same fields on both backends.

    ``tasks_waiting``: tasks waiting for the SQLite writer or for a pooled
    PostgreSQL connection. ``queue_depth``: statements queued for the SQLite
    owner threads (always 0 on PostgreSQL). ``connections_*`` describe the
    pool (SQLite: a writer and a reader connection).
    ``consecutive_write_failures``: transactions in a row that failed because
    the database could not take the write (:class:`StoreUnavailable`: locked,
    read-only, disk full, unreachable); 0 again after the next commit. Health
    checks report the store degraded on it, as a ping only proves reads.
    ``round_trips``: calls into the database since the store opened: jobs
    run on the SQLite writer and reader threads, crossings from trio into
    asyncio (asyncpg) on PostgreSQL. Each costs a thread or loop hand-off, so
    a unit of work that defers its statements (``tx.defer``) keeps it low.
    """

    backend: Backend
    transactions_committed: int
    transactions_rolled_back: int
    transactions_active: int
    tasks_waiting: int
    queue_depth: int
    connections_in_use: int
    connections_idle: int
    connections_max: int
    listeners: int
    consecutive_write_failures: int = 0
    round_trips: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON and metrics exporters."""
        return asdict(self)


class UnitOfWork(Protocol):
    """The statements of one transaction; everything commits or nothing does.

    Obtained from ``async with store.transaction() as tx``. SQL uses ``$1``
    placeholders on every backend. Do not use it after its block exits.

    Statements whose result the caller does not need can be *deferred*
    (:meth:`defer`, :meth:`defer_many`, :meth:`defer_publish`): they are sent
    together with the unit's next round trip, so a unit of work that only
    defers costs one round trip to the database, ``BEGIN`` and ``COMMIT``
    included::

        async with store.transaction() as tx:
            tx.defer("INSERT INTO notes (id, text) VALUES ($1, $2)", note_id, text)
            tx.defer_many("INSERT INTO note_tags (id, tag) VALUES ($1, $2)",
                          [(note_id, tag) for tag in tags])
            tx.defer_publish(envelope)
        # one hop to the SQLite writer thread, one crossing into asyncpg

    An error of a deferred statement is raised by the round trip that ran it
    (possibly the commit, at the end of the ``async with`` block); after it
    the unit of work refuses further statements and rolls back.
    """

    async def execute(self, sql: str, *params: Any) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Run a query; return all rows."""
        ...

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Run a query; return its first row or ``None``."""
        ...

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Run a query; return the first column of its first row (``None`` if no row)."""
        ...

    async def publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> int:
        """Write an outbox row in this transaction; return its id.

        ``event`` is a ``triotok.transport.Envelope`` (encoded here) or the
        already encoded ``bytes``, in which case ``event_id`` and
        ``event_type`` are required. Nothing is published if the transaction
        rolls back.
        """
        ...

    async def inbox_seen(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id`` in this transaction.

        Returns ``True`` the first time (go ahead and apply the effect) and
        ``False`` if it was already recorded (a redelivery: skip it).
        """
        ...

    def defer(
        self, sql: str, *params: Any, expect: int | None = None, error: Exception | None = None
    ) -> None:
        """Queue a statement for the unit's next round trip (its result is not returned).

        With ``expect``, the statement must change exactly that many rows;
        otherwise the round trip that runs it raises ``error`` (default: a
        :class:`ConflictError`) and nothing queued after it runs. This is how
        an optimistic ``UPDATE ... WHERE version = $n`` is deferred.
        """
        ...

    def defer_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Queue one statement run once per parameter row (``executemany``); none for no rows."""
        ...

    def defer_publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> None:
        """Queue the outbox row of ``event`` (as :meth:`publish`, without waiting for its id)."""
        ...

    async def flush(self) -> None:
        """Send the deferred statements now (one round trip; nothing if none are queued)."""
        ...


class Store(Protocol):
    """A database holding TrioToK's tables, behind one interface for every backend.

    Example::

        async with open_store("sqlite:///triotok-data/triotok.db") as store:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "Acme")
                await tx.publish(envelope)
            rows = await store.fetch("SELECT id, name FROM tenants")
    """

    @property
    def backend(self) -> Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    @property
    def url(self) -> str:
        """The store URL, safe to log (password masked)."""
        ...

    @property
    def schema_version(self) -> int:
        """The version of the store's own tables (``schema_versions["store"]``)."""
        ...

    @property
    def schema_versions(self) -> Mapping[str, int]:
        """Each module's applied migration version (the store's own under ``"store"``)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Open a unit of work: commit when the block exits normally, else roll back."""
        ...

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement in its own transaction; return the rows changed."""
        ...

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Read outside a transaction (sees committed data)."""
        ...

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Read the first row outside a transaction."""
        ...

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Read one value outside a transaction."""
        ...

    async def claim_outbox(
        self, node_id: str, limit: int = 100, lease_seconds: float = 30.0
    ) -> list[OutboxRow]:
        """Lease up to ``limit`` committed, undelivered, due rows to ``node_id``, in id order.

        A claimed row is invisible to other claimers until its lease expires;
        concurrent claimers never receive the same row.
        """
        ...

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        """Mark rows delivered (and release their lease); return how many changed."""
        ...

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        """Release a row's lease, record ``error`` and make it due again at ``retry_at``."""
        ...

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        """Delete outbox rows delivered before a cutoff (a datetime, or an age)."""
        ...

    async def prune_inbox(self, older_than: datetime | timedelta) -> int:
        """Delete inbox records processed before a cutoff (older redeliveries are not deduped)."""
        ...

    def listen(
        self,
        channel: str = OUTBOX_CHANNEL,
        *,
        poll_interval: float = 30.0,
        fallback_interval: float = 1.0,
    ) -> AbstractAsyncContextManager[Wakeups]:
        """Subscribe to wake-ups on ``channel`` for the duration of the block."""
        ...

    async def ping(self) -> None:
        """Round-trip to the database; raise ``StoreUnavailable`` if it is unreachable."""
        ...

    def statistics(self) -> StoreStatistics:
        """A snapshot of transactions, queues and connections."""
        ...
