"""The store as actors: the owner of the open store, its stable handle, the outbox feed.

* :class:`StoreOwner` (``/app/store``) opens the store for the life of its
  incarnation and publishes it through a :class:`StoreHandle`, the stable
  object other actors hold: a restarted owner opens a new store and the
  handle follows, so nobody keeps a closed store.
* :class:`OutboxFeed` (``/app/transport``) tails the outbox table by id and
  hands every committed event to local subscribers, on every node: this is how
  a ``tenant.updated`` written by one process reaches the caches of all of
  them. It does not claim or mark rows (that is the relay's job, which
  delivers each event once); it only observes them, so any number of feeds
  can tail one table. Wake-ups come from ``store.listen()`` (``NOTIFY`` on
  PostgreSQL, in-process on SQLite) with a polling fallback for commits of
  other SQLite processes.

Their messages (:class:`Ping`, :class:`GetPosition`) are small frozen types
defined here, next to the actors that take them; anything else is refused
with :class:`~triotok.actors.UnknownMessage`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from .._exceptions import StoreUnavailable
from ..actors import Actor, UnknownMessage
from ..transport import Envelope, InMemoryTransport, SchemaError, decode
from ._guard import GuardedStore, StoreBreakers
from ._migrations import Schema
from ._open import open_store
from ._types import Store

__all__ = ("EventHandler", "GetPosition", "OutboxFeed", "Ping", "StoreHandle", "StoreOwner")

logger = logging.getLogger("triotok.store")

EventHandler = Callable[[Envelope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Ping:
    """Ask :class:`StoreOwner`: round-trip the open store; the reply is the seconds it took.

    ::

        seconds = await system.ref("/app/store").ask(Ping())
    """


@dataclass(frozen=True, slots=True)
class GetPosition:
    """Ask :class:`OutboxFeed`: the reply is the id of the last outbox row it handed on."""


class StoreHandle:
    """The current store of the application, or :class:`StoreUnavailable` between owners.

    ``breakers`` are the store's read and write circuit breakers; an owner
    started with ``guard=True`` (the application's) publishes its store
    behind them (:class:`~._guard.GuardedStore`), so calls fail fast while
    the database is down. ``wrap`` (telemetry's instrumented store, for one)
    is applied to each store an owner publishes (around the guard): every
    user of the handle gets the wrapped store, the owner's tree entry keeps
    the backend's statistics.
    """

    def __init__(
        self,
        breakers: StoreBreakers | None = None,
        *,
        wrap: Callable[[Store], Store] | None = None,
    ) -> None:
        self._store: Store | None = None
        self._opened = trio.Event()
        self.breakers = breakers if breakers is not None else StoreBreakers()
        self._wrap = wrap

    @property
    def store(self) -> Store:
        store = self._store
        if store is None:
            raise StoreUnavailable("the store is not open (starting, restarting or stopped)")
        return store

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def _set(self, store: Store | None) -> None:
        if store is not None and self._wrap is not None:
            store = self._wrap(store)
        self._store = store
        if store is not None:
            self._opened.set()
        else:
            self._opened = trio.Event()

    async def wait_open(self) -> Store:
        """Wait until an owner opened the store; return it."""
        await self._opened.wait()
        return self.store


class StoreOwner(Actor):
    """``/app/store``: holds the store open; answers :class:`Ping` with the round-trip time.

    With ``guard`` the store is published behind the handle's breakers (both
    shown in the tree as components of ``/app/store``).
    """

    def __init__(
        self,
        handle: StoreHandle,
        url: str,
        schemas: Sequence[Schema] = (),
        guard: bool = False,
    ) -> None:
        self._handle = handle
        self._url = url
        self._schemas = tuple(schemas)
        self._guard = guard
        self._closing = trio.Event()
        self._closed = trio.Event()

    async def on_start(self) -> None:
        await self.ctx.nursery.start(self._hold)

    async def _hold(self, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with open_store(self._url, schemas=self._schemas) as opened:
                store: Store = opened
                if self._guard:
                    breakers = self._handle.breakers
                    breakers.reset()
                    store = GuardedStore(opened, breakers)
                    self.ctx.register("reads", breakers.reads)
                    self.ctx.register("writes", breakers.writes)
                self._handle._set(store)
                self.ctx.register("store", opened)
                task_status.started()
                try:
                    await self._closing.wait()
                finally:
                    self._handle._set(None)
        finally:
            self._closed.set()

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            started = trio.current_time()
            await self._handle.store.ping()
            return trio.current_time() - started
        raise UnknownMessage(self.ctx.path, message, (Ping,))

    async def on_stop(self) -> None:
        self._closing.set()
        await self._closed.wait()


class OutboxFeed(Actor):
    """``/app/transport/feed``: every committed outbox event, to the local ``events`` transport.

    Starts after the highest id present at start (history is not replayed).
    While the store is unavailable it waits (``poll_interval``) and goes on
    from its position once the store answers: it never crashes for it.
    Subscribers register on the :class:`~triotok.transport.InMemoryTransport`
    given at construction, which outlives restarts of this actor and of them.
    A subscriber raising is logged and skipped: a feed of cache invalidations
    must not stall on one bad handler. Answers :class:`GetPosition`.
    """

    def __init__(
        self, handle: StoreHandle, events: InMemoryTransport, *, poll_interval: float = 1.0
    ) -> None:
        self._handle = handle
        self._events = events
        self._poll_interval = poll_interval
        self.position = 0
        self._positioned = False

    async def on_start(self) -> None:
        await self._handle.wait_open()
        with contextlib.suppress(StoreUnavailable):  # else the tail takes it, later
            await self._start_position()
        self.ctx.start_soon(self._tail)

    async def _start_position(self) -> None:
        store = self._handle.store
        self.position = int(await store.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox"))
        self._positioned = True

    async def receive(self, message: Any) -> Any:
        if isinstance(message, GetPosition):
            return self.position
        raise UnknownMessage(self.ctx.path, message, (GetPosition,))

    async def _tail(self) -> None:
        # A store that is down (or restarting) is no crash: the feed waits and goes
        # on from its position, so no committed event is skipped or handed on twice.
        failing = False
        while True:
            try:
                if not self._positioned:
                    await self._start_position()
                await self._follow(self._handle.store)
            except StoreUnavailable as exc:
                if not failing:
                    logger.warning("outbox feed: the store is unavailable (%s); waiting", exc)
                failing = True
                await trio.sleep(self._poll_interval)

    async def _follow(self, store: Store) -> None:
        # SQLite wakes only this process's waiters: commits of other processes on the
        # same file (another worker, another node) are found by polling every
        # ``poll_interval``; PostgreSQL's NOTIFY reaches every node.
        poll = self._poll_interval if store.backend == "sqlite" else 30.0
        async with store.listen(
            poll_interval=poll, fallback_interval=self._poll_interval
        ) as wakeups:
            while True:
                rows = await store.fetch(
                    "SELECT id, event_type, payload FROM outbox WHERE id > $1 ORDER BY id"
                    " LIMIT 500",
                    self.position,
                )
                for row in rows:
                    self.position = int(row["id"])
                    await self._dispatch(str(row["event_type"]), bytes(row["payload"]))
                if len(rows) < 500:
                    await wakeups.wait()

    async def _dispatch(self, event_type: str, payload: bytes) -> None:
        # Decoding is most of a row's cost: only for events a subscriber takes.
        if not self._events.wants(event_type):
            return
        try:
            envelope = decode(payload)
        except SchemaError as exc:
            logger.warning("outbox feed: cannot decode a %s event: %s", event_type, exc)
            return
        try:
            await self._events.publish(envelope)
        except Exception:
            logger.exception("outbox feed: a subscriber of %s failed", event_type)
