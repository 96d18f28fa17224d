"""Circuit breakers around the store: fail fast while the database is down.

:class:`GuardedStore` is the :class:`~._types.Store` every actor gets from the
:class:`~._owner.StoreHandle`: the real store behind two breakers
(:class:`StoreBreakers`), one for reads (``fetch*``, ``ping``) and one for
writes (transactions, ``execute``, the outbox calls). Only
:class:`StoreUnavailable` counts as a failure: a unique violation, a missing
row or a domain error raised inside a transaction says the database works.

Invariants:

* while a breaker is open, a call through it raises :class:`StoreUnavailable`
  at once (``retry_after`` set, so HTTP answers 503 with ``Retry-After``)
  without touching the database: a request never waits for a connect
  timeout of a store known to be down;
* every code path that handled ``StoreUnavailable`` before handles an open
  breaker the same way (the relay backs off, health reports the store down);
* reads and writes trip separately: a SQLite file that another process has
  locked still answers reads, and the node stays readable while read-only.

Nothing probes by itself: the service-mode monitor pings (a read) and writes
its heartbeat (a write) periodically, which closes a breaker once the store
is back (its half-open trial call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from .._exceptions import CircuitOpen, StoreUnavailable
from ..resilience import BreakerState, CircuitBreaker
from ._types import OUTBOX_CHANNEL, Backend, OutboxRow, Row, Store, StoreStatistics, UnitOfWork
from ._wakeups import Wakeups

__all__ = ("GuardedStore", "StoreBreakers")


class StoreBreakers:
    """The read and write breakers of a store (they outlive restarts of ``/app/store``).

    Defaults suit a database on the local network: 3 failing of the last 6
    calls open a breaker, which lets one trial call through after
    ``wait_in_open`` seconds; calls slower than ``slow_call_duration`` are
    counted slow (the service mode degrades on their rate).
    """

    def __init__(
        self,
        *,
        window_size: int = 6,
        minimum_calls: int = 3,
        failure_rate_threshold: float = 50.0,
        wait_in_open: float = 1.0,
        slow_call_duration: float = 2.0,
        half_open_calls: int = 1,
    ) -> None:
        options: dict[str, Any] = {
            "window_size": window_size,
            "minimum_calls": minimum_calls,
            "failure_rate_threshold": failure_rate_threshold,
            "wait_in_open": wait_in_open,
            "slow_call_duration": slow_call_duration,
            "half_open_calls": half_open_calls,
            "record_exceptions": (StoreUnavailable,),
        }
        self.reads = CircuitBreaker("store.reads", **options)
        self.writes = CircuitBreaker("store.writes", **options)

    @property
    def readable(self) -> bool:
        return self.reads.state is BreakerState.CLOSED

    @property
    def writable(self) -> bool:
        return self.writes.state is BreakerState.CLOSED

    def reset(self) -> None:
        """Close both breakers with clean windows (a new store was opened)."""
        self.reads.reset()
        self.writes.reset()


def _unavailable(exc: CircuitOpen) -> StoreUnavailable:
    error = StoreUnavailable(f"the store is unavailable ({exc.name} breaker {exc.state})")
    error.retry_after = exc.retry_after  # type: ignore[attr-defined]  # read by problem_for
    return error


class GuardedStore:
    """A :class:`~._types.Store` whose every call goes through :class:`StoreBreakers`."""

    def __init__(self, store: Store, breakers: StoreBreakers) -> None:
        self._store = store
        self._reads = breakers.reads
        self._writes = breakers.writes
        self.breakers = breakers

    def __repr__(self) -> str:
        return f"<GuardedStore {self._store!r}>"

    @property
    def inner(self) -> Store:
        """The store behind the breakers."""
        return self._store

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (tests, benchmarks) pass through unguarded.
        return getattr(self._store, name)

    # ------------------------------------------------------------------ properties

    @property
    def backend(self) -> Backend:
        return self._store.backend

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    @property
    def schema_versions(self) -> Mapping[str, int]:
        return self._store.schema_versions

    def statistics(self) -> StoreStatistics:
        return self._store.statistics()

    def listen(
        self,
        channel: str = OUTBOX_CHANNEL,
        *,
        poll_interval: float = 30.0,
        fallback_interval: float = 1.0,
    ) -> AbstractAsyncContextManager[Wakeups]:
        return self._store.listen(
            channel, poll_interval=poll_interval, fallback_interval=fallback_interval
        )

    # ------------------------------------------------------------------ reads

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        try:
            return await self._reads.call(self._store.fetch, sql, *params)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        try:
            return await self._reads.call(self._store.fetchrow, sql, *params)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def fetchval(self, sql: str, *params: Any) -> Any:
        try:
            return await self._reads.call(self._store.fetchval, sql, *params)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def ping(self) -> None:
        try:
            await self._reads.call(self._store.ping)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    # ------------------------------------------------------------------ writes

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        try:
            await self._writes.__aenter__()
        except CircuitOpen as exc:
            raise _unavailable(exc) from None
        try:
            async with self._store.transaction() as tx:
                yield tx
        except BaseException as exc:
            await self._writes.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await self._writes.__aexit__(None, None, None)

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            return await self._writes.call(self._store.execute, sql, *params)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def claim_outbox(
        self, node_id: str, limit: int = 100, lease_seconds: float = 30.0
    ) -> list[OutboxRow]:
        try:
            return await self._writes.call(self._store.claim_outbox, node_id, limit, lease_seconds)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        try:
            return await self._writes.call(self._store.mark_delivered, ids)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        try:
            await self._writes.call(self._store.mark_failed, id, error, retry_at)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        try:
            return await self._writes.call(self._store.prune_delivered, older_than)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None

    async def prune_inbox(self, older_than: datetime | timedelta) -> int:
        try:
            return await self._writes.call(self._store.prune_inbox, older_than)
        except CircuitOpen as exc:
            raise _unavailable(exc) from None
