"""The embedded SQLite backend.

Invariants:

* One writer: all writes go through the writer connection's owner thread,
  and a ``trio.Lock`` is held for a whole unit of work, so a transaction's
  statements run in order on that thread and no other transaction's
  statements interleave with them. ``BEGIN IMMEDIATE`` takes SQLite's write
  lock before the unit's first statement, so another *process* on the same
  file waits (``busy_timeout``) instead of failing halfway through.
* One hop per round trip: ``BEGIN IMMEDIATE`` travels with the unit's first
  statement and the deferred statements (``tx.defer``) with the next one,
  ``COMMIT`` included, as one job on the writer thread. The lock makes that
  equivalent to sending them one by one: nobody else uses the writer
  connection in between.
* Reads outside transactions use a second, ``query_only`` connection on its
  own thread; WAL lets it read the last committed state while a write is in
  progress.
* No commit checkpoints the WAL: a third connection, on a thread of its own,
  does it every ``checkpoint_every`` write jobs (``store/_checkpoint.py``).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import trio

from .._exceptions import ConflictError, StoreError, StoreUnavailable
from ._checkpoint import Checkpointer
from ._config import SqliteConfig
from ._deferred import Deferred, UnitFailed, expectation_failed, many_rows
from ._migrations import (
    CREATE_LEGACY_TABLE,
    CREATE_MIGRATIONS_TABLE,
    LEGACY_SENTINEL_NAME,
    LEGACY_SENTINEL_VERSION,
    Schema,
    plan,
    schemas_with_store,
)
from ._outbox import check_claim, encode_event
from ._sql import adapt_sqlite_params, format_timestamp, parse_timestamp, to_sqlite
from ._thread import ConnectionThread
from ._types import OUTBOX_CHANNEL, Backend, OutboxRow, Row, StoreStatistics
from ._wakeups import WakeupHub, Wakeups

__all__ = ("SqliteStore", "open_sqlite_store")

T = TypeVar("T")

# Converters are keyed by declared column type, so these only affect columns
# declared TIMESTAMPTZ / BOOLEAN (ours), never the stdlib's TIMESTAMP.
sqlite3.register_converter("TIMESTAMPTZ", parse_timestamp)
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))

_UNAVAILABLE = {
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_READONLY",
}
_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
#: Bytes a restarted WAL file is cut back to (a rebuild can grow it to hundreds of MB).
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# "UNIQUE constraint failed: t.a, t.b" (an expression index names itself instead).
_UNIQUE_KEY = re.compile(r"UNIQUE constraint failed: ((?:\w+\.\w+)(?:, \w+\.\w+)*)$")

_OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, event_type, tenant_id, payload, created_at,"
    " available_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
)


def _map_error(exc: sqlite3.Error, path: object) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name in _UNIQUE:
        key = _UNIQUE_KEY.match(str(exc))
        if key is None:
            return ConflictError(f"{exc}")
        pairs = [column.split(".") for column in key.group(1).split(", ")]
        return ConflictError(f"{exc}", table=pairs[0][0], columns=tuple(c for _, c in pairs))
    if any(name.startswith(prefix) for prefix in _UNAVAILABLE):
        return StoreUnavailable(f"sqlite {path}: {exc}")
    return StoreError(f"sqlite {path}: {type(exc).__name__}: {exc}")


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    if cursor.description is None:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


@dataclass
class _Counters:
    committed: int = 0
    rolled_back: int = 0
    active: int = 0
    write_failures: int = 0
    published_channels: set[str] = field(default_factory=set)


def _run_deferred(conn: sqlite3.Connection, statements: Sequence[Deferred]) -> None:
    for statement in statements:
        if statement.many:
            conn.executemany(statement.sql, statement.params)
            continue
        changed = conn.execute(statement.sql, statement.params).rowcount
        if statement.expect is not None and changed != statement.expect:
            raise expectation_failed(statement, changed)


class _SqliteUnitOfWork:
    """The statements of one SQLite transaction (see :class:`UnitOfWork`).

    ``BEGIN IMMEDIATE`` and the deferred statements ride on the next job sent
    to the writer thread; the commit is one more job, or none when the last
    statement carried it (:meth:`_run` with ``commit=True``).
    """

    __slots__ = ("_begun", "_done", "_failed", "_open", "_pending", "_store", "published")

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._open = True
        self._begun = False  # a job carrying BEGIN IMMEDIATE was sent
        self._done = False  # COMMIT was sent
        self._failed: BaseException | None = None
        self._pending: list[Deferred] = []
        self.published = False

    def _check(self) -> None:
        if not self._open:
            raise StoreError("this unit of work has ended; open a new transaction")
        if self._failed is not None:
            raise UnitFailed(
                f"a statement of this unit of work failed earlier ({self._failed!r}); it rolls back"
            )

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, commit: bool = False) -> T:
        self._check()
        return await self._send(fn, commit=commit)

    async def _send(self, fn: Callable[[sqlite3.Connection], T], *, commit: bool) -> T:
        pending, self._pending = self._pending, []
        begin = not self._begun
        if not (begin or pending or commit):
            return await self._store._write(fn)
        self._begun = True
        if commit:
            self._open = False
            self._done = True

        sent = [False]  # BEGIN and the deferred statements went through

        def job(c: sqlite3.Connection) -> T:
            if begin:
                c.execute("BEGIN IMMEDIATE")
            if pending:
                _run_deferred(c, pending)
            sent[0] = True
            result = fn(c)
            if commit:
                c.execute("COMMIT")
            return result

        try:
            return await self._store._write(job)
        except BaseException as exc:
            # Statements queued after the failing one never ran (or there is no
            # transaction): nothing may commit now. A failed statement of its
            # own leaves the transaction usable, as SQLite does.
            if not sent[0] or commit:
                self._failed = exc
            raise

    async def _commit(self) -> None:
        """Send what is queued with ``COMMIT`` (nothing if nothing was ever sent)."""
        if self._done:
            return
        self._check()  # a unit whose statement failed never commits, even if the error was caught
        self._open = False
        if self._begun or self._pending:
            await self._send(_nothing, commit=True)

    def defer(
        self, sql: str, *params: Any, expect: int | None = None, error: Exception | None = None
    ) -> None:
        """Queue a statement for the next round trip (see :class:`UnitOfWork`)."""
        self._check()
        self._pending.append(
            Deferred(to_sqlite(sql), adapt_sqlite_params(params), False, expect, error)
        )

    def defer_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Queue one statement per parameter row for the next round trip."""
        self._check()
        args = [adapt_sqlite_params(row) for row in many_rows(rows)]
        if args:
            self._pending.append(Deferred(to_sqlite(sql), args, True))

    def defer_publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> None:
        """Queue the outbox row of ``event`` for the next round trip."""
        self._check()
        args = _outbox_args(event, event_id, event_type, tenant_id, available_at)
        self._pending.append(Deferred(_OUTBOX_INSERT, args))
        self.published = True

    async def flush(self) -> None:
        """Send the deferred statements now."""
        self._check()
        if self._pending:
            await self._run(_nothing)

    async def execute(self, sql: str, *params: Any) -> int:
        """Run a statement; return the number of rows it changed."""
        query, args = to_sqlite(sql), adapt_sqlite_params(params)
        return await self._run(lambda c: c.execute(query, args).rowcount)

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Run a query; return all rows."""
        query, args = to_sqlite(sql), adapt_sqlite_params(params)
        return await self._run(lambda c: _rows(c.execute(query, args)))

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Run a query; return its first row or ``None``."""
        rows = await self.fetch(sql, *params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Run a query; return the first column of its first row."""
        query, args = to_sqlite(sql), adapt_sqlite_params(params)

        def one(c: sqlite3.Connection) -> Any:
            row = c.execute(query, args).fetchone()
            return None if row is None else row[0]

        return await self._run(one)

    async def publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> int:
        """Write an outbox row in this transaction; return its id."""
        args = _outbox_args(event, event_id, event_type, tenant_id, available_at)

        def insert(c: sqlite3.Connection) -> int:
            cursor = c.execute(_OUTBOX_INSERT, args)
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        outbox_id = await self._run(insert)
        self.published = True
        return outbox_id

    async def inbox_seen(self, consumer: str, event_id: str) -> bool:
        """Record ``(consumer, event_id)``; ``True`` the first time, ``False`` on redelivery."""
        args = (consumer, str(event_id), format_timestamp(datetime.now(UTC)))
        changed = await self._run(
            lambda c: (
                c.execute(
                    "INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT DO NOTHING",
                    args,
                ).rowcount
            )
        )
        return changed == 1


def _nothing(_conn: sqlite3.Connection) -> None:
    return None


def _outbox_args(
    event: Any,
    event_id: str | None,
    event_type: str | None,
    tenant_id: str | None,
    available_at: datetime | None,
) -> tuple[Any, ...]:
    row = encode_event(event, event_id, event_type, tenant_id)
    now = format_timestamp(datetime.now(UTC))
    due = format_timestamp(available_at) if available_at is not None else now
    return (row.event_id, row.event_type, row.tenant_id, row.payload, now, due)


class SqliteStore:
    """The SQLite store; create it with ``open_store("sqlite:///...")``."""

    def __init__(self, config: SqliteConfig, schemas: Sequence[Schema] = ()) -> None:
        self._config = config
        self._writer = ConnectionThread("triotok-sqlite-writer", self._connect_writer)
        self._reader = ConnectionThread("triotok-sqlite-reader", self._connect_reader)
        self._checkpointer = (
            Checkpointer(self._connect_writer, every=config.checkpoint_every)
            if config.checkpoint_every
            else None
        )
        self._lock = trio.Lock()
        self._counters = _Counters()
        self._hub = WakeupHub(always_listening=True)
        self._schema_versions: dict[str, int] = {}
        self._schemas = schemas_with_store(schemas)

    # ------------------------------------------------------------------ lifecycle

    def _connect(self, *, query_only: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit BEGINs; transactions are explicit.
        conn = sqlite3.connect(
            self._config.path,
            timeout=self._config.busy_timeout,
            isolation_level=None,
            detect_types=sqlite3.PARSE_DECLTYPES,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._config.busy_timeout * 1000)}")
            _set_wal(conn, self._config.busy_timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            # A log that grew long (a rebuild) is cut back when it restarts.
            conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            if not query_only and self._config.checkpoint_every:
                # The checkpointer's thread does it (store/_checkpoint.py).
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA foreign_keys = ON")
            if query_only:
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        return self._connect(query_only=False)

    def _connect_reader(self) -> sqlite3.Connection:
        return self._connect(query_only=True)

    async def _start(self) -> None:
        path = self._config.path
        try:
            await trio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        except OSError as exc:
            raise StoreUnavailable(f"sqlite {path}: cannot create directory: {exc}") from exc
        try:
            await self._writer.start()
            self._schema_versions = await self._write(self._migrate)
            await self._reader.start()
            if self._checkpointer is not None:
                await trio.to_thread.run_sync(self._checkpointer.start)
        except sqlite3.Error as exc:
            raise _map_error(exc, path) from exc

    async def aclose(self) -> None:
        """Close the connections and join their threads."""
        with trio.CancelScope(shield=True):
            if self._checkpointer is not None:
                await trio.to_thread.run_sync(self._checkpointer.close)
            await self._reader.aclose()
            await self._writer.aclose()

    def _migrate(self, conn: sqlite3.Connection) -> dict[str, int]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            legacy_exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            legacy: int | None = None
            if legacy_exists:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
                legacy = None if row[0] is None else int(row[0])
            conn.execute(CREATE_LEGACY_TABLE["sqlite"])
            conn.execute(CREATE_MIGRATIONS_TABLE["sqlite"])
            applied = {
                str(module): int(version)
                for module, version in conn.execute(
                    "SELECT module, max(version) FROM module_migrations GROUP BY module"
                )
            }
            now = format_timestamp(datetime.now(UTC))
            for step in plan(applied, legacy, self._schemas, self.url):
                if not step.adopt:
                    for statement in step.migration.sqlite:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO module_migrations (module, version, name, applied_at)"
                    " VALUES (?, ?, ?, ?)",
                    (step.module, step.migration.version, step.migration.name, now),
                )
                applied[step.module] = step.migration.version
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (LEGACY_SENTINEL_VERSION, LEGACY_SENTINEL_NAME, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
        return applied

    # ------------------------------------------------------------------ plumbing

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        path = self._config.path

        def guarded(conn: sqlite3.Connection) -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise _map_error(exc, path) from exc

        result = await self._writer.run(guarded)
        if self._checkpointer is not None:
            self._checkpointer.wrote()
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        path = self._config.path

        def guarded(conn: sqlite3.Connection) -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise _map_error(exc, path) from exc

        return await self._reader.run(guarded)

    # ------------------------------------------------------------------ Store API

    @property
    def backend(self) -> Backend:
        """``"sqlite"``."""
        return "sqlite"

    @property
    def url(self) -> str:
        """The store URL."""
        return self._config.display

    @property
    def schema_version(self) -> int:
        """The version of the store's own tables (``schema_versions["store"]``)."""
        return self._schema_versions.get("store", 0)

    @property
    def schema_versions(self) -> Mapping[str, int]:
        """Each module's applied migration version (the store's own under ``"store"``)."""
        return dict(self._schema_versions)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteUnitOfWork]:
        """Open a unit of work (``BEGIN IMMEDIATE`` ... ``COMMIT`` on the writer thread).

        ``BEGIN IMMEDIATE`` goes with the first statement and the deferred
        statements with the next one (``COMMIT`` included): a unit that only
        defers is one job on the writer thread.
        """
        async with self._lock:
            self._counters.active += 1
            uow = _SqliteUnitOfWork(self)
            try:
                yield uow
                await uow._commit()
            except BaseException as exc:
                uow._open = False
                if uow._begun:
                    # Shielded: a cancelled block must still leave the writer
                    # connection outside any transaction for the next holder.
                    with trio.CancelScope(shield=True):
                        await self._writer.run(_rollback_if_open)
                self._counters.rolled_back += 1
                if isinstance(exc, StoreUnavailable):
                    self._counters.write_failures += 1
                raise
            finally:
                uow._open = False
                self._counters.active -= 1
            self._counters.committed += 1
            self._counters.write_failures = 0
        if uow.published:
            self._hub.notify(OUTBOX_CHANNEL)

    async def _atomic(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` in a transaction of its own: BEGIN, ``fn``, COMMIT in one writer job."""
        async with self.transaction() as tx:
            return await tx._run(fn, commit=True)

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement in its own transaction (one writer job)."""
        query, args = to_sqlite(sql), adapt_sqlite_params(params)
        return await self._atomic(lambda c: c.execute(query, args).rowcount)

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Read committed data on the reader connection."""
        query, args = to_sqlite(sql), adapt_sqlite_params(params)
        return await self._read(lambda c: _rows(c.execute(query, args)))

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Read the first row."""
        rows = await self.fetch(sql, *params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Read one value."""
        row = await self.fetchrow(sql, *params)
        return None if row is None else next(iter(row.values()))

    async def claim_outbox(
        self, node_id: str, limit: int = 100, lease_seconds: float = 30.0
    ) -> list[OutboxRow]:
        """Lease due, undelivered rows to ``node_id`` in id order (single writer: no races)."""
        check_claim(limit)
        now = datetime.now(UTC)
        args = (
            node_id,
            int(limit),
            format_timestamp(now + timedelta(seconds=lease_seconds)),
            format_timestamp(now),
        )
        rows = await self._atomic(
            lambda c: _rows(
                c.execute(
                    "UPDATE outbox SET claimed_by = ?1, claimed_until = ?3,"
                    " attempts = attempts + 1"
                    " WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL"
                    "   AND available_at <= ?4"
                    "   AND (claimed_until IS NULL OR claimed_until < ?4)"
                    "   ORDER BY id LIMIT ?2)"
                    " RETURNING *",
                    args,
                )
            )
        )
        return sorted((OutboxRow.from_row(r) for r in rows), key=lambda r: r.id)

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        """Mark rows delivered and release their lease."""
        if not ids:
            return 0
        now = format_timestamp(datetime.now(UTC))
        args = [(now, int(i)) for i in ids]

        def update(c: sqlite3.Connection) -> int:
            return c.executemany(
                "UPDATE outbox SET delivered_at = ?1, claimed_by = NULL, claimed_until = NULL"
                " WHERE id = ?2 AND delivered_at IS NULL",
                args,
            ).rowcount

        return await self._atomic(update)

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        """Release the lease, record ``error``, make the row due at ``retry_at``."""
        await self.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, last_error = $2,"
            " available_at = $3 WHERE id = $1 AND delivered_at IS NULL",
            int(id),
            error,
            retry_at,
        )

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        """Delete outbox rows delivered before the cutoff."""
        return await self.execute(
            "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1",
            _cutoff(older_than),
        )

    async def prune_inbox(self, older_than: datetime | timedelta) -> int:
        """Delete inbox records processed before the cutoff."""
        return await self.execute("DELETE FROM inbox WHERE processed_at < $1", _cutoff(older_than))

    @asynccontextmanager
    async def listen(
        self,
        channel: str = OUTBOX_CHANNEL,
        *,
        poll_interval: float = 30.0,
        fallback_interval: float = 1.0,
    ) -> AsyncIterator[Wakeups]:
        """Wake-ups from commits in this process; poll for other processes' commits."""
        wakeups = self._hub.subscribe(channel, poll_interval, fallback_interval)
        try:
            yield wakeups
        finally:
            self._hub.unsubscribe(wakeups)

    async def ping(self) -> None:
        """Round-trip through the reader thread."""
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    def statistics(self) -> StoreStatistics:
        """Transactions, writer queue and the two connections."""
        lock = self._lock.statistics()
        active = self._counters.active
        return StoreStatistics(
            backend="sqlite",
            transactions_committed=self._counters.committed,
            transactions_rolled_back=self._counters.rolled_back,
            transactions_active=active,
            tasks_waiting=lock.tasks_waiting,
            queue_depth=self._writer.queue_depth + self._reader.queue_depth,
            connections_in_use=active + (1 if self._reader.queue_depth else 0),
            connections_idle=2 - active - (1 if self._reader.queue_depth else 0),
            connections_max=2,
            listeners=self._hub.subscriber_count,
            consecutive_write_failures=self._counters.write_failures,
            round_trips=self._writer.jobs + self._reader.jobs,
        )


def _set_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried within ``busy_timeout``.

    Switching a new database file to WAL takes an exclusive lock, and SQLite
    answers "database is locked" at once (without its busy handler) when
    another connection switches or writes at that moment, as when several
    processes open a fresh database together. This runs on the connection's
    own thread, so waiting here blocks nothing else.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _cutoff(older_than: datetime | timedelta) -> datetime:
    if isinstance(older_than, timedelta):
        return datetime.now(UTC) - older_than
    return older_than


@asynccontextmanager
async def open_sqlite_store(
    config: SqliteConfig, schemas: Sequence[Schema] = ()
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the SQLite database of ``config``."""
    store = SqliteStore(config, schemas)
    try:
        await store._start()
        yield store
    finally:
        await store.aclose()
