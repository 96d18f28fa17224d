"""A cached, supervised lookup: an actor owning a ``LoadingCache``, and its stable handle.

The actor (:class:`CachedLookup`) owns the cache: loads run in its
incarnation's nursery, so a crash or a stop cancels them and their waiters
get :class:`~triotok.ActorStopped` instead of hanging. Readers on the hot
path (HTTP requests) go through the :class:`Directory`, which reads the
current incarnation's cache directly: a hit costs a dict lookup, and misses
of different keys load concurrently instead of queueing behind each other in
the actor's mailbox. Invalidations arrive as events or as messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Generic, TypeVar

import trio

from .._exceptions import ActorStopped
from ..actors import Actor, CacheStatistics, LoadingCache
from ..transport import Envelope, InMemoryTransport

__all__ = ("CachedLookup", "Directory", "Invalidate")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Invalidate:
    """Drop ``key`` from the cache (``None``: drop everything)."""

    key: Any


class Directory(Generic[K, V]):
    """The stable handle on a :class:`CachedLookup`, valid across its restarts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cache: LoadingCache[K, V] | None = None
        #: Called with the seconds each :meth:`get` took (telemetry; None: not timed).
        self.timer: Callable[[float], None] | None = None

    @property
    def ready(self) -> bool:
        return self._cache is not None

    async def get(self, key: K) -> V | None:
        """The value for ``key`` or ``None`` when absent (also negatively cached).

        A fresh hit answers without a checkpoint (every request resolves its
        tenant and key, and a scheduler round trip costs more than the lookup).
        """
        cache = self._cache
        if cache is None:
            raise ActorStopped(f"/{self.name}")
        timer = self.timer
        if timer is None:
            try:
                return cache.get_nowait(key)
            except trio.WouldBlock:
                return await cache.get_or_none(key)
        started = perf_counter()
        try:
            try:
                return cache.get_nowait(key)
            except trio.WouldBlock:
                return await cache.get_or_none(key)
        finally:
            timer(perf_counter() - started)

    def invalidate(self, key: K) -> None:
        if self._cache is not None:
            self._cache.invalidate(key)

    def invalidate_all(self) -> None:
        if self._cache is not None:
            self._cache.invalidate_all()

    def statistics(self) -> CacheStatistics | None:
        return None if self._cache is None else self._cache.statistics()


class CachedLookup(Actor, Generic[K, V]):
    """Owns the cache behind a :class:`Directory`; subclasses give the loader.

    ``events``/``event_prefix``: invalidate ``key_of(envelope)`` for every event
    whose type starts with the prefix (from any node, via the outbox feed).
    ``stale_grace``: seconds past its TTL an entry is still answered when
    reloading it fails (the store is down): requests keep resolving their
    tenant and key through an outage. An invalidated entry is never served.
    """

    def __init__(
        self,
        directory: Directory[K, V],
        loader: Callable[[K], Awaitable[V | None]],
        *,
        events: InMemoryTransport | None = None,
        event_prefix: str = "",
        key_of: Callable[[Envelope], K | None] | None = None,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        maxsize: int = 10_000,
        stale_grace: float = 3600.0,
    ) -> None:
        self._directory = directory
        self._loader = loader
        self._events = events
        self._prefix = event_prefix
        self._key_of = key_of
        self._options: dict[str, Any] = {
            "ttl": ttl,
            "negative_ttl": negative_ttl,
            "maxsize": maxsize,
            "stale_grace": stale_grace,
        }
        self._subscription = f"{directory.name}-invalidation"

    async def on_start(self) -> None:
        cache: LoadingCache[K, V] = LoadingCache(
            self._loader, nursery=self.ctx.nursery, name=self._directory.name, **self._options
        )
        self.ctx.register("cache", cache)
        self._directory._cache = cache
        if self._events is not None:
            await self._events.unsubscribe(self._subscription)
            await self._events.subscribe(self._subscription, self._on_event, prefix=self._prefix)

    async def on_stop(self) -> None:
        self._directory._cache = None
        if self._events is not None:
            await self._events.unsubscribe(self._subscription)

    async def _on_event(self, envelope: Envelope) -> None:
        if self._key_of is None or not envelope.event_type.startswith(self._prefix):
            return
        key = self._key_of(envelope)
        if key is not None:
            self._directory.invalidate(key)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Invalidate):
            if message.key is None:
                self._directory.invalidate_all()
            else:
                self._directory.invalidate(message.key)
            return None
        return await self._directory.get(message)
