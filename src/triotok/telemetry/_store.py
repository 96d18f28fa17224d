"""The store seen through telemetry: db spans and statement timings around any backend.

:class:`InstrumentedStore` implements the :class:`~triotok.store.Store`
protocol by delegating to the real store (anything else it offers passes
through). Each statement is timed into ``db_query_duration_seconds{kind}``
and, under a recording span, gets a ``db <KIND>`` child span; a unit of work
is a ``db transaction`` span around its statements, and ``tx.publish``
(or ``tx.defer_publish``) a
producer span ``outbox publish <type>`` whose context the envelope carries
in ``Envelope.trace_id``, so the relay's delivery (in any process) continues
from it. Spans carry the statement's kind and text (with its ``$n``
placeholders), never its parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import datetime, timedelta
from functools import partial
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..store import Row, Store, StoreStatistics, UnitOfWork
from ..transport import Envelope

if TYPE_CHECKING:
    from ._metrics import Metrics
    from ._tracing import SpanScope, Tracing

__all__ = ("InstrumentedStore", "statement_kind")

_KINDS = frozenset({"select", "insert", "update", "delete", "with", "create", "alter", "drop"})
_kind_cache: dict[str, str] = {}
_KIND_CACHE_SIZE = 4096


def statement_kind(sql: str) -> str:
    """``select``, ``insert``, ``update``, ``delete``... from the first keyword, else ``other``."""
    kind = _kind_cache.get(sql)
    if kind is None:
        word = sql.lstrip(" \t\r\n(").split(None, 1)[0].lower() if sql.strip() else ""
        kind = word if word in _KINDS else "other"
        if len(_kind_cache) < _KIND_CACHE_SIZE:  # SQL built at run time must not grow it
            _kind_cache[sql] = kind
    return kind


class _Instruments:
    __slots__ = ("attributes", "metrics", "tracing")

    def __init__(self, backend: str, tracing: Tracing | None, metrics: Metrics | None) -> None:
        self.tracing = tracing
        self.metrics = metrics
        self.attributes = {"db.system": backend}

    def span(self, kind: str, sql: str | None) -> SpanScope | None:
        tracing = self.tracing
        if tracing is None or not tracing.recording():
            return None
        from opentelemetry.trace import SpanKind

        if kind == "transaction":
            return tracing.scope("db transaction", None, SpanKind.INTERNAL, self.attributes)
        if kind == "batch":  # a unit of work's deferred statements, in one round trip
            statements = sql.split(";\n") if sql else []
            batch: dict[str, Any] = {
                **self.attributes,
                "db.operation.name": "BATCH",
                "db.operation.batch.size": len(statements),
                "db.query.text": sql or "",
            }
            return tracing.scope("db BATCH", None, SpanKind.CLIENT, batch)
        attributes: dict[str, Any] = {**self.attributes, "db.operation.name": kind.upper()}
        if sql is not None:
            attributes["db.query.text"] = sql
        return tracing.scope(f"db {kind.upper()}", None, SpanKind.CLIENT, attributes)

    async def run(self, kind: str, sql: str | None, call: Any, *args: Any) -> Any:
        scope = self.span(kind, sql)
        started = perf_counter()
        try:
            if scope is None:
                return await call(*args)
            with scope:
                return await call(*args)
        finally:
            if self.metrics is not None:
                self.metrics.observe_statement(kind, perf_counter() - started)


class InstrumentedStore:
    """A :class:`~triotok.store.Store` that reports to telemetry; see the module docstring."""

    def __init__(
        self, store: Store, *, tracing: Tracing | None = None, metrics: Metrics | None = None
    ) -> None:
        self._store = store
        self._i = _Instruments(store.backend, tracing, metrics)

    def __getattr__(self, name: str) -> Any:  # backend-specific extras pass through
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"<InstrumentedStore {self._store!r}>"

    @property
    def wrapped(self) -> Store:
        """The backend's own store."""
        return self._store

    @property
    def backend(self) -> Any:
        return self._store.backend

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    @property
    def schema_versions(self) -> Any:
        return self._store.schema_versions

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return _Transaction(self._store, self._i)

    async def execute(self, sql: str, *params: Any) -> int:
        result: int = await self._i.run(statement_kind(sql), sql, self._store.execute, sql, *params)
        return result

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        result: list[Row] = await self._i.run(
            statement_kind(sql), sql, self._store.fetch, sql, *params
        )
        return result

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        result: Row | None = await self._i.run(
            statement_kind(sql), sql, self._store.fetchrow, sql, *params
        )
        return result

    async def fetchval(self, sql: str, *params: Any) -> Any:
        return await self._i.run(statement_kind(sql), sql, self._store.fetchval, sql, *params)

    async def claim_outbox(
        self, node_id: str, limit: int = 100, lease_seconds: float = 30.0
    ) -> Any:
        return await self._i.run(
            "claim", None, self._store.claim_outbox, node_id, limit, lease_seconds
        )

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        result: int = await self._i.run("update", None, self._store.mark_delivered, ids)
        return result

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        await self._i.run("update", None, self._store.mark_failed, id, error, retry_at)

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        result: int = await self._i.run("delete", None, self._store.prune_delivered, older_than)
        return result

    async def prune_inbox(self, older_than: datetime | timedelta) -> int:
        result: int = await self._i.run("delete", None, self._store.prune_inbox, older_than)
        return result

    def listen(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.listen(*args, **kwargs)

    async def ping(self) -> None:
        await self._store.ping()

    def statistics(self) -> StoreStatistics:
        return self._store.statistics()


class _Transaction:
    """``async with store.transaction() as tx``: the backend's, inside a ``db transaction`` span."""

    __slots__ = ("_inner", "_instruments", "_scope", "_started", "_store", "_uow")

    def __init__(self, store: Store, instruments: _Instruments) -> None:
        self._store = store
        self._instruments = instruments
        self._inner: AbstractAsyncContextManager[UnitOfWork] | None = None
        self._scope: SpanScope | None = None
        self._started = 0.0
        self._uow: _UnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        instruments = self._instruments
        self._scope = scope = instruments.span("transaction", None)
        if scope is not None:
            scope.__enter__()
        self._started = perf_counter()
        try:
            self._inner = self._store.transaction()
            tx = await self._inner.__aenter__()
        except BaseException as exc:
            if scope is not None:
                scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._uow = _UnitOfWork(tx, instruments)
        return self._uow

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._inner is not None
        scope = self._scope
        batch = None if self._uow is None or exc is not None else self._uow.take_deferred()
        try:
            if batch is None:
                suppressed = await self._inner.__aexit__(exc_type, exc, tb)
            else:  # the commit sends the deferred statements
                suppressed = await self._instruments.run(
                    "batch", batch, self._inner.__aexit__, exc_type, exc, tb
                )
        except BaseException as error:
            if scope is not None:
                scope.__exit__(type(error), error, error.__traceback__)
            raise
        finally:
            metrics = self._instruments.metrics
            if metrics is not None:
                metrics.observe_statement("transaction", perf_counter() - self._started)
        if scope is not None:
            scope.__exit__(exc_type, exc, tb)
        return suppressed


class _UnitOfWork:
    """The backend's unit of work, each statement timed and (when traced) a span.

    Deferred statements (``tx.defer``...) travel with the unit of work's next
    round trip: that round trip is one ``db BATCH`` span holding their texts
    (its own statement, if any, gets its span inside it), the commit's when
    nothing else sends them.
    """

    __slots__ = ("_deferred", "_i", "_tx")

    def __init__(self, tx: UnitOfWork, instruments: _Instruments) -> None:
        self._tx = tx
        self._i = instruments
        self._deferred: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def defer(self, sql: str, *params: Any, **options: Any) -> None:
        self._tx.defer(sql, *params, **options)
        self._deferred.append(sql)

    def defer_many(self, sql: str, rows: Any) -> None:
        self._tx.defer_many(sql, rows)
        self._deferred.append(sql)

    def take_deferred(self) -> str | None:
        """The texts of the statements the next round trip sends first (and forget them)."""
        if not self._deferred:
            return None
        text = ";\n".join(self._deferred)
        self._deferred.clear()
        return text

    async def _run(self, kind: str, sql: str | None, call: Any, *args: Any) -> Any:
        batch = self.take_deferred()
        if batch is None:
            return await self._i.run(kind, sql, call, *args)
        return await self._i.run("batch", batch, self._i.run, kind, sql, call, *args)

    async def execute(self, sql: str, *params: Any) -> int:
        result: int = await self._run(statement_kind(sql), sql, self._tx.execute, sql, *params)
        return result

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        result: list[Row] = await self._run(statement_kind(sql), sql, self._tx.fetch, sql, *params)
        return result

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        result: Row | None = await self._run(
            statement_kind(sql), sql, self._tx.fetchrow, sql, *params
        )
        return result

    async def fetchval(self, sql: str, *params: Any) -> Any:
        return await self._run(statement_kind(sql), sql, self._tx.fetchval, sql, *params)

    async def inbox_seen(self, consumer: str, event_id: str) -> bool:
        result: bool = await self._run("inbox", None, self._tx.inbox_seen, consumer, event_id)
        return result

    async def publish(self, event: Any, **options: Any) -> int:
        label = _event_label(event, options)
        with self._producer(event, label) as traced:
            publish = partial(self._tx.publish, traced, **options)
            row_id: int = await self._run("insert", None, publish)
        self._published(label)
        return row_id

    def defer_publish(self, event: Any, **options: Any) -> None:
        # Queued for the unit of work's next round trip: the producer span marks
        # the moment the event was written, as for ``publish``.
        label = _event_label(event, options)
        with self._producer(event, label) as traced:
            self._tx.defer_publish(traced, **options)
        self._deferred.append("INSERT INTO outbox")
        self._published(label)

    async def flush(self) -> None:
        batch = self.take_deferred()
        if batch is not None:
            await self._i.run("batch", batch, self._tx.flush)

    def _published(self, label: str) -> None:
        if self._i.metrics is not None:
            self._i.metrics.observe_published(label)

    @contextmanager
    def _producer(self, event: Any, label: str) -> Iterator[Any]:
        """The producer span ``outbox publish <type>`` around writing ``event``, and the
        envelope to write: naming that span as its parent (when traced)."""
        tracing = self._i.tracing
        if tracing is None or not isinstance(event, Envelope) or not tracing.recording():
            yield event
            return
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "triotok.outbox",
            "messaging.operation.type": "send",
            "messaging.destination.name": label,
            "messaging.message.id": str(event.id),
        }
        with tracing.scope(f"outbox publish {label}", None, SpanKind.PRODUCER, attributes):
            current = tracing.current_traceparent()
            # The envelope names the producer span as its parent, unless it
            # carries another trace (a replayed or forwarded event).
            if current is not None and _same_trace(event.trace_id, current):
                event = dataclasses.replace(event, trace_id=current)
            yield event


def _event_label(event: Any, options: dict[str, Any]) -> str:
    event_type = event.event_type if isinstance(event, Envelope) else options.get("event_type")
    return str(event_type or "unknown")


def _same_trace(traceparent: str | None, current: str) -> bool:
    if traceparent is None:
        return True
    return traceparent.split("-")[1:2] == current.split("-")[1:2]
