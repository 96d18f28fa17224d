"""The PostgreSQL backend: an asyncpg pool driven from trio through trio-asyncio.

Invariants:

* Every database call crosses the trio/asyncio boundary once: the asyncio
  side of a call (acquire, statement, release) is one coroutine, run with
  ``loop.run_aio_coroutine`` on the loop captured at open, so any trio task
  may call the store, not only those spawned inside ``open_store``.
* A unit of work keeps one connection from ``BEGIN`` to ``COMMIT``/``ROLLBACK``.
  It takes the connection (and sends ``BEGIN``) in the same crossing as its
  first statement, and sends its deferred statements (``tx.defer``) in the
  crossing of the next one or of the commit: a unit that only defers crosses
  into asyncio once, acquire to release.
* Nothing asyncpg or socket-level escapes: connection trouble becomes
  ``StoreUnavailable`` (retryable), unique violations ``ConflictError``, any
  other database error ``StoreError``. After a connection loss the pool's
  connections are expired, so the next call reconnects by itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import asyncpg
import trio
import trio_asyncio

from .._exceptions import ConflictError, StoreError, StoreUnavailable, TriotokError
from .._util import single_leaf
from ._config import PostgresConfig
from ._deferred import Deferred, UnitFailed, expectation_failed, many_rows
from ._fuse import fuse_all, fuse_runs
from ._migrations import (
    CREATE_LEGACY_TABLE,
    CREATE_MIGRATIONS_TABLE,
    LEGACY_SENTINEL_NAME,
    LEGACY_SENTINEL_VERSION,
    MIGRATION_LOCK_KEY,
    Schema,
    plan,
    schemas_with_store,
)
from ._outbox import check_claim, encode_event
from ._types import OUTBOX_CHANNEL, Backend, OutboxRow, Row, StoreStatistics
from ._wakeups import WakeupHub, Wakeups, check_channel

__all__ = ("PostgresStore", "open_postgres_store")

T = TypeVar("T")

# Bounds cleanup (rollback, release, close) of a connection that may be dead.
_CLEANUP_TIMEOUT = 5.0
_LISTENER_BACKOFF = (0.05, 2.0)

_CLAIM_SQL = """
WITH picked AS (
    SELECT id FROM outbox
    WHERE delivered_at IS NULL AND available_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
UPDATE outbox AS o
SET claimed_by = $1,
    claimed_until = now() + make_interval(secs => $3),
    attempts = o.attempts + 1
FROM picked
WHERE o.id = picked.id
RETURNING o.*"""


# --------------------------------------------------------------------------- errors


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InsufficientResourcesError,
    ):
        return True
    # A connection the server dropped mid-operation surfaces as client-side
    # protocol errors ("connection has been released back to the pool",
    # "cannot switch to state ..."): the database is going away, not a bug.
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError)


# A unique violation's detail: "Key (tenant_id, slug)=(acme, about) already exists."
_UNIQUE_KEY = re.compile(r"Key \(((?:\w+)(?:, \w+)*)\)=")


def _unique_violation(exc: Any) -> ConflictError:
    message = f"{exc} ({exc.detail})" if exc.detail else str(exc)
    key = _UNIQUE_KEY.match(exc.detail or "")
    if key is None or not exc.table_name:
        return ConflictError(message)
    return ConflictError(message, table=exc.table_name, columns=tuple(key.group(1).split(", ")))


def _map_error(exc: Exception, url: str) -> Exception:
    if isinstance(exc, TriotokError):
        return exc
    if isinstance(exc, asyncpg.UniqueViolationError):
        return _unique_violation(exc)
    if isinstance(exc, asyncpg.QueryCanceledError):
        return StoreUnavailable(f"{url}: statement cancelled (statement_timeout?): {exc}")
    if _is_unavailable(exc):
        return StoreUnavailable(f"{url}: database unavailable: {type(exc).__name__}: {exc}")
    return StoreError(f"{url}: {type(exc).__name__}: {exc}")


def _rowcount(status: str) -> int:
    # Command tags end in the row count for DML: "INSERT 0 1", "UPDATE 3".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# --------------------------------------------------------------------------- asyncio side
# These coroutines run on the asyncio loop; each is one boundary crossing.


async def _with_connection(pool: Any, fn: Callable[[Any], Awaitable[T]], *, retry_stale: bool) -> T:
    for attempt in (0, 1):
        try:
            async with pool.acquire() as conn:
                try:
                    return await fn(conn)
                except asyncpg.PostgresError:
                    raise  # the server answered: the connection is in a clean state
                except BaseException:
                    # Cancelled or broken mid-protocol: never hand it out again.
                    conn.terminate()
                    raise
        except Exception as exc:
            # After a server restart every idle pooled connection is dead;
            # expiring them makes the retry (and later calls) reconnect.
            if _is_unavailable(exc) and not isinstance(exc, asyncpg.QueryCanceledError):
                await pool.expire_connections()
                if retry_stale and attempt == 0:
                    continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _keep_session(conn: Any) -> None:
    """Pool reset hook that skips asyncpg's default reset query.

    The default (``RESET ALL; UNLISTEN *; ...``) costs a round trip on every
    release. TrioToK never leaves session state on pooled connections: every
    unit of work ends in COMMIT/ROLLBACK before release (asyncpg still rolls
    back a stray open transaction before calling this hook), LISTEN uses
    dedicated connections and the migration lock is transaction-scoped.
    Application SQL must follow suit (``SET LOCAL``, not ``SET``).
    """


async def _run_deferred(conn: Any, statements: Sequence[Deferred]) -> None:
    # Each statement is one exchange with the server (runs of plain inserts
    # fused into one, see _fuse.py), all within the single crossing that
    # carries them.
    for statement in fuse_runs(statements):
        if statement.many:
            await conn.executemany(statement.sql, statement.params)
            continue
        status = await conn.execute(statement.sql, *statement.params)
        if statement.expect is not None:
            changed = _rowcount(status)
            if changed != statement.expect:
                raise expectation_failed(statement, changed)


async def _acquire_begin(pool: Any) -> Any:
    for attempt in (0, 1):
        conn = await pool.acquire()
        try:
            await conn.execute("BEGIN")
            return conn
        except BaseException as exc:
            if not conn.is_closed() and conn.is_in_transaction():
                # Cancelled after the BEGIN went out: releasing it would make asyncpg
                # report a reset inside a transaction to the loop (fatal under
                # trio-asyncio). The server rolls a terminated session back.
                conn.terminate()
            await pool.release(conn)
            # Nothing ran yet, so retrying on a fresh connection is safe.
            if isinstance(exc, Exception) and _is_unavailable(exc):
                await pool.expire_connections()
                if attempt == 0:
                    continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _AbortedTransaction(StoreError):
    """COMMIT answered ROLLBACK: a statement failed earlier and its error was swallowed."""


async def _finish(pool: Any, conn: Any, *, commit: bool, notify: str | None) -> None:
    # Raw BEGIN/COMMIT rather than asyncpg's Transaction object, so that
    # NOTIFY and COMMIT share one round trip (a simple multi-statement query).
    # The NOTIFY is delivered by the server only if this transaction commits.
    try:
        if commit:
            status = await conn.execute(f"NOTIFY {notify}; COMMIT" if notify else "COMMIT")
            if status.endswith("ROLLBACK"):
                raise _AbortedTransaction(
                    "the transaction was aborted by an earlier failed statement and rolled back"
                )
        elif not conn.is_closed():
            await conn.execute("ROLLBACK")
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            with suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    finally:
        await pool.release(conn)


async def _migrate(pool: Any, url: str, schemas: Sequence[Schema]) -> dict[str, int]:
    async with pool.acquire() as conn, conn.transaction():
        # Held to the end of this transaction: concurrent starts queue here.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        legacy: int | None = None
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            found = await conn.fetchval("SELECT max(version) FROM schema_migrations")
            legacy = None if found is None else int(found)
        await conn.execute(CREATE_LEGACY_TABLE["postgresql"])
        await conn.execute(CREATE_MIGRATIONS_TABLE["postgresql"])
        rows = await conn.fetch(
            "SELECT module, max(version) AS version FROM module_migrations GROUP BY module"
        )
        applied = {str(r["module"]): int(r["version"]) for r in rows}
        for step in plan(applied, legacy, schemas, url):
            if not step.adopt:
                for statement in step.migration.postgresql:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO module_migrations (module, version, name) VALUES ($1, $2, $3)",
                step.module,
                step.migration.version,
                step.migration.name,
            )
            applied[step.module] = step.migration.version
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            LEGACY_SENTINEL_VERSION,
            LEGACY_SENTINEL_NAME,
        )
    return applied


# --------------------------------------------------------------------------- unit of work


_OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, event_type, tenant_id, payload, available_at)"
    " VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now()))"
)


class _PgUnitOfWork:
    """The statements of one PostgreSQL transaction, on one connection (see UnitOfWork).

    The connection is taken (``BEGIN``) by the first crossing; the deferred
    statements go with the next one; :meth:`_commit` ends with ``COMMIT``
    and the release in the same crossing.
    """

    __slots__ = ("_conn", "_done", "_failed", "_open", "_pending", "_pool", "_store", "published")

    def __init__(self, store: PostgresStore, pool: Any) -> None:
        self._store = store
        self._pool = pool
        self._conn: Any = None
        self._open = True
        self._done = False
        self._failed: BaseException | None = None
        self._pending: list[Deferred] = []
        self.published = False

    def _check(self) -> None:
        # Before any coroutine exists: after release the connection belongs to someone else.
        if not self._open:
            raise StoreError("this unit of work has ended; open a new transaction")
        if self._failed is not None:
            raise UnitFailed(
                f"a statement of this unit of work failed earlier ({self._failed!r}); it rolls back"
            )

    async def _connection(self) -> Any:
        """(asyncio side) The unit's connection, taken with ``BEGIN`` on first use."""
        conn = self._conn
        if conn is None:
            store = self._store
            store._waiting += 1
            try:
                conn = self._conn = await _acquire_begin(self._pool)
            finally:
                store._waiting -= 1
        return conn

    async def _call(
        self, fn: Callable[[Any], Coroutine[Any, Any, T]], *, commit: bool = False
    ) -> T:
        self._check()
        return await self._send(fn, commit=commit)

    async def _send(self, fn: Callable[[Any], Coroutine[Any, Any, T]], *, commit: bool) -> T:
        pending, self._pending = self._pending, []
        fresh = self._conn is None
        sent = False
        if commit:
            self._open = False
            self._done = True

        async def crossing() -> T:
            nonlocal sent
            if commit and fn is _nothing and self._conn is None:
                # Nothing ran yet and only deferred statements are left: if
                # they fuse into one statement, it is its own transaction.
                notify = OUTBOX_CHANNEL if self.published else None
                single = fuse_all(pending, notify=notify)
                if single is not None:
                    sql, args = single.sql, single.params
                    await _with_connection(
                        self._pool, lambda c: c.execute(sql, *args), retry_stale=False
                    )
                    return cast(T, None)
            conn = await self._connection()
            if pending:
                await _run_deferred(conn, pending)
            sent = True
            result = await fn(conn)
            if commit:
                self._conn = None  # released by _finish whatever happens
                notify = OUTBOX_CHANNEL if self.published else None
                await _finish(self._pool, conn, commit=True, notify=notify)
            return result

        try:
            return await self._store._aio(crossing())
        except BaseException as exc:
            # As on SQLite: after a failed BEGIN, deferred statement or commit,
            # nothing may commit (PostgreSQL itself refuses after any error).
            if not sent or fresh or commit:
                self._failed = exc
            raise

    async def _commit(self) -> None:
        """Send what is queued with ``COMMIT`` (nothing if nothing was ever sent)."""
        if self._done:
            return
        self._check()
        self._open = False
        if self._conn is not None or self._pending:
            await self._send(_nothing, commit=True)

    def defer(
        self, sql: str, *params: Any, expect: int | None = None, error: Exception | None = None
    ) -> None:
        """Queue a statement for the next crossing (see :class:`UnitOfWork`)."""
        self._check()
        self._pending.append(Deferred(sql, params, False, expect, error))

    def defer_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Queue one statement per parameter row (one ``executemany``) for the next crossing."""
        self._check()
        args = many_rows(rows)
        if args:
            self._pending.append(Deferred(sql, args, True))

    def defer_publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> None:
        """Queue the outbox row of ``event``; ``NOTIFY`` follows at commit."""
        self._check()
        row = encode_event(event, event_id, event_type, tenant_id)
        args = (row.event_id, row.event_type, row.tenant_id, row.payload, available_at)
        self._pending.append(Deferred(_OUTBOX_INSERT, args))
        self.published = True

    async def flush(self) -> None:
        """Send the deferred statements now."""
        self._check()
        if self._pending:
            await self._send(_nothing, commit=False)

    async def execute(self, sql: str, *params: Any) -> int:
        """Run a statement; return the number of rows it changed."""
        return _rowcount(await self._call(lambda c: c.execute(sql, *params)))

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Run a query; return all rows."""
        return [dict(r) for r in await self._call(lambda c: c.fetch(sql, *params))]

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Run a query; return its first row or ``None``."""
        row = await self._call(lambda c: c.fetchrow(sql, *params))
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Run a query; return the first column of its first row."""
        return await self._call(lambda c: c.fetchval(sql, *params))

    async def publish(
        self,
        event: Any,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        tenant_id: str | None = None,
        available_at: datetime | None = None,
    ) -> int:
        """Write an outbox row in this transaction; ``NOTIFY`` follows at commit."""
        row = encode_event(event, event_id, event_type, tenant_id)
        outbox_id = await self.fetchval(
            _OUTBOX_INSERT + " RETURNING id",
            row.event_id,
            row.event_type,
            row.tenant_id,
            row.payload,
            available_at,
        )
        self.published = True
        return int(outbox_id)

    async def inbox_seen(self, consumer: str, event_id: str) -> bool:
        """Record ``(consumer, event_id)``; ``True`` the first time, ``False`` on redelivery."""
        changed = await self.execute(
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            consumer,
            str(event_id),
        )
        return changed == 1


async def _nothing(_conn: Any) -> None:
    return None


# --------------------------------------------------------------------------- store


class PostgresStore:
    """The PostgreSQL store; create it with ``open_store("postgresql://...")``."""

    def __init__(
        self,
        config: PostgresConfig,
        loop: Any,
        nursery: trio.Nursery,
        schemas: Sequence[Schema] = (),
    ) -> None:
        self._config = config
        self._loop = loop
        self._nursery = nursery
        self._pool: Any = None
        self._hub = WakeupHub()
        self._listeners: set[str] = set()
        self._schema_versions: dict[str, int] = {}
        self._schemas = schemas_with_store(schemas)
        self._committed = 0
        self._rolled_back = 0
        self._write_failures = 0
        self._active = 0
        self._waiting = 0
        self._round_trips = 0

    async def _aio(self, coro: Coroutine[Any, Any, T]) -> T:
        self._round_trips += 1
        try:
            result: T = await self._loop.run_aio_coroutine(coro)
        except Exception as exc:
            mapped = _map_error(exc, self.url)
            if mapped is exc:
                raise
            raise mapped from exc
        return result

    async def _start(self) -> None:
        config = self._config
        settings = {"application_name": "triotok"}
        if config.statement_timeout is not None:
            settings["statement_timeout"] = str(max(1, math.ceil(config.statement_timeout * 1000)))
        self._pool = await self._aio(
            asyncpg.create_pool(
                config.dsn,
                min_size=config.pool_min_size,
                max_size=config.pool_size,
                timeout=config.connect_timeout,
                server_settings=settings,
                reset=_keep_session,
            )
        )
        self._schema_versions = await self._aio(_migrate(self._pool, self.url, self._schemas))

    async def _aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        with trio.CancelScope(shield=True):
            # Closing a pool whose server is gone may fail or hang: terminate then.
            with trio.move_on_after(_CLEANUP_TIMEOUT), suppress(Exception):
                await self._loop.run_aio_coroutine(pool.close())
            pool.terminate()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreError(f"{self.url}: the store is closed")
        return self._pool

    # ------------------------------------------------------------------ Store API

    @property
    def backend(self) -> Backend:
        """``"postgresql"``."""
        return "postgresql"

    @property
    def url(self) -> str:
        """The DSN with the password masked."""
        return self._config.display

    @property
    def schema_version(self) -> int:
        """The migration version the database is at."""
        return self._schema_versions.get("store", 0)

    @property
    def schema_versions(self) -> Mapping[str, int]:
        """Each module's applied migration version (the store's own under ``"store"``)."""
        return dict(self._schema_versions)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgUnitOfWork]:
        """Open a unit of work on one pooled connection (taken with its first statement)."""
        pool = self._require_pool()
        uow = _PgUnitOfWork(self, pool)
        self._active += 1
        try:
            try:
                yield uow
                await uow._commit()
            except BaseException as exc:
                if isinstance(exc, StoreUnavailable):
                    self._write_failures += 1
                uow._open = False
                conn, uow._conn = uow._conn, None
                if conn is not None:
                    # Shielded and bounded: release the connection even when
                    # cancelled; a failed rollback on a dead connection is moot
                    # (the server rolled back) and the pool discards it.
                    with (
                        trio.CancelScope(shield=True),
                        trio.move_on_after(_CLEANUP_TIMEOUT),
                        suppress(StoreError),
                    ):
                        await self._aio(_finish(pool, conn, commit=False, notify=None))
                self._rolled_back += 1
                raise
            self._committed += 1
            self._write_failures = 0
        finally:
            self._active -= 1
        if uow.published:
            # Local subscribers need not wait for the NOTIFY round trip.
            self._hub.notify(OUTBOX_CHANNEL)

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement in its own transaction (one crossing: BEGIN, it, COMMIT)."""
        async with self.transaction() as tx:
            return _rowcount(await tx._call(lambda c: c.execute(sql, *params), commit=True))

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        pool = self._require_pool()
        self._waiting += 1
        try:
            return await self._aio(_with_connection(pool, fn, retry_stale=True))
        finally:
            self._waiting -= 1

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Read committed data (retried once on a stale pooled connection)."""
        records = await self._read(lambda c: c.fetch(sql, *params))
        return [dict(r) for r in records]

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """Read the first row."""
        record = await self._read(lambda c: c.fetchrow(sql, *params))
        return None if record is None else dict(record)

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """Read one value."""
        return await self._read(lambda c: c.fetchval(sql, *params))

    async def claim_outbox(
        self, node_id: str, limit: int = 100, lease_seconds: float = 30.0
    ) -> list[OutboxRow]:
        """Lease rows with ``FOR UPDATE SKIP LOCKED``: concurrent relays never share a row."""
        check_claim(limit)
        pool = self._require_pool()
        args = (node_id, int(limit), float(lease_seconds))
        # Not retried: a claim whose reply was lost just lets its lease expire.
        records = await self._aio(
            _with_connection(pool, lambda c: c.fetch(_CLAIM_SQL, *args), retry_stale=False)
        )
        return sorted((OutboxRow.from_row(r) for r in records), key=lambda r: r.id)

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        """Mark rows delivered and release their lease (idempotent)."""
        if not ids:
            return 0
        status = await self._read(
            lambda c: c.execute(
                "UPDATE outbox SET delivered_at = now(), claimed_by = NULL, claimed_until = NULL"
                " WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL",
                [int(i) for i in ids],
            )
        )
        return _rowcount(status)

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        """Release the lease, record ``error``, make the row due at ``retry_at``."""
        await self._read(
            lambda c: c.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, last_error = $2,"
                " available_at = $3 WHERE id = $1 AND delivered_at IS NULL",
                int(id),
                error,
                retry_at,
            )
        )

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        """Delete outbox rows delivered before the cutoff."""
        cutoff = _cutoff(older_than)
        status = await self._read(
            lambda c: c.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1", cutoff
            )
        )
        return _rowcount(status)

    async def prune_inbox(self, older_than: datetime | timedelta) -> int:
        """Delete inbox records processed before the cutoff."""
        cutoff = _cutoff(older_than)
        status = await self._read(
            lambda c: c.execute("DELETE FROM inbox WHERE processed_at < $1", cutoff)
        )
        return _rowcount(status)

    @asynccontextmanager
    async def listen(
        self,
        channel: str = OUTBOX_CHANNEL,
        *,
        poll_interval: float = 30.0,
        fallback_interval: float = 1.0,
    ) -> AsyncIterator[Wakeups]:
        """Wake-ups from ``NOTIFY channel`` on any node (one LISTEN connection per channel)."""
        self._require_pool()
        wakeups = self._hub.subscribe(check_channel(channel), poll_interval, fallback_interval)
        if channel not in self._listeners:
            self._listeners.add(channel)
            self._nursery.start_soon(self._listen_forever, channel)
        try:
            yield wakeups
        finally:
            self._hub.unsubscribe(wakeups)

    async def _listen_forever(self, channel: str) -> None:
        """Keep a LISTEN connection up; while it is down, subscribers poll faster."""
        delay = _LISTENER_BACKOFF[0]
        while True:
            try:
                await self._listen_once(channel)
                delay = _LISTENER_BACKOFF[0]
            except StoreError:
                await trio.sleep(delay)
                delay = min(delay * 2, _LISTENER_BACKOFF[1])

    async def _listen_once(self, channel: str) -> None:
        """One LISTEN connection's life: returns when it is lost, raises if it cannot connect."""
        lost = trio.Event()

        def on_notify(*_: Any) -> None:
            self._hub.notify(channel)

        def on_lost(*_: Any) -> None:
            lost.set()

        async def connect() -> Any:
            conn = await asyncpg.connect(self._config.dsn, timeout=self._config.connect_timeout)
            try:
                conn.add_termination_listener(on_lost)
                await conn.add_listener(channel, on_notify)
            except BaseException:
                conn.terminate()
                raise
            return conn

        conn = await self._aio(connect())
        self._hub.set_listening(channel, True)
        # Anything committed while nobody listened would otherwise wait for a poll.
        self._hub.notify(channel)
        try:
            # The termination callback is the fast path; is_closed() is the backstop.
            while not lost.is_set() and not conn.is_closed():
                with trio.move_on_after(_CLEANUP_TIMEOUT):
                    await lost.wait()
        finally:
            self._hub.set_listening(channel, False)
            if not conn.is_closed():
                conn.terminate()

    async def ping(self) -> None:
        """``SELECT 1``; raises ``StoreUnavailable`` if the database is unreachable."""
        await self.fetchval("SELECT 1")

    def statistics(self) -> StoreStatistics:
        """Pool connections in use / idle / max and tasks waiting for one."""
        pool = self._pool
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return StoreStatistics(
            backend="postgresql",
            transactions_committed=self._committed,
            transactions_rolled_back=self._rolled_back,
            transactions_active=self._active,
            tasks_waiting=self._waiting,
            queue_depth=0,
            connections_in_use=size - idle,
            connections_idle=idle,
            connections_max=self._config.pool_size,
            listeners=self._hub.subscriber_count,
            consecutive_write_failures=self._write_failures,
            round_trips=self._round_trips,
        )


def _cutoff(older_than: datetime | timedelta) -> datetime:
    if isinstance(older_than, timedelta):
        return datetime.now(UTC) - older_than
    return older_than


@asynccontextmanager
async def open_postgres_store(
    config: PostgresConfig, schemas: Sequence[Schema] = ()
) -> AsyncIterator[PostgresStore]:
    """Open the pool, migrate, and run listeners until the block exits.

    Reuses the running trio-asyncio loop if the caller opened one, else opens
    one for the lifetime of the store. The nurseries inside (ours and
    trio-asyncio's) wrap errors in exception groups; a group holding a single
    error is unwrapped, so callers catch ``StoreUnavailable`` or their own
    exception as raised, not ``ExceptionGroup[...]``.
    """
    try:
        async with AsyncExitStack() as stack:
            loop = trio_asyncio.current_loop.get()
            if loop is None:
                loop = await stack.enter_async_context(trio_asyncio.open_loop())
            async with trio.open_nursery() as nursery:
                store = PostgresStore(config, loop, nursery, schemas)
                try:
                    await store._start()
                    yield store
                finally:
                    nursery.cancel_scope.cancel()
                    await store._aclose()
    except BaseExceptionGroup as group:
        leaf = single_leaf(group)
        if leaf is None:
            raise
        raise leaf from leaf.__cause__
