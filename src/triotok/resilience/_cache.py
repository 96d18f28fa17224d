"""LoadingCache: a bounded TTL cache that loads misses once, through a SingleFlight.

Features, in the order a lookup meets them:

* **bounds**: a cachetools ``LRUCache`` or ``LFUCache`` holds the entries;
  evicting one for room counts as an eviction.
* **TTL with jitter**: every entry stores its own deadline,
  ``ttl * (1 - uniform(0, jitter))``, so entries loaded together do not expire
  together and no value is ever served as fresh for longer than ``ttl``.
* **negative caching**: a loader returns ``None`` or raises ``LookupError`` to
  say "absent"; that answer is kept for ``negative_ttl`` (usually shorter).
* **single flight**: concurrent misses of one key share one load, which runs in
  the owner's nursery, so a cancelled caller never cancels the others.
* **serve-stale-on-error**: when reloading an expired value fails, the old value
  is served until ``ttl + stale_grace`` after it was loaded; past that the
  loader's error propagates.
* **invalidation**: ``invalidate(key)`` / ``invalidate_all()`` drop entries and
  mark loads in flight as superseded, so such a load cannot put a value read
  before the invalidation back into the cache.

All time comes from :func:`trio.current_time`, so ``trio.testing.MockClock``
drives expiry in tests. Deadlines are kept in the entries rather than in a
cachetools ``TTLCache``: the TTL varies per entry (jitter, negative TTL) and an
expired value must survive its TTL to be served stale.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import Any, Generic, Literal, TypeVar

import cachetools
import trio

from .._exceptions import ActorStopped, InvalidConfig, NotFound
from .._util import fraction, positive_int, seconds
from ._singleflight import SingleFlight, owned_nursery

__all__ = ("CacheStatistics", "LoadingCache", "open_loading_cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Policy = Literal["lru", "lfu"]


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of a :class:`LoadingCache`'s counters, for metrics.

    Every ``get``/``get_or_none`` counts as exactly one of ``hits`` (fresh
    value), ``negative_hits`` (fresh "absent") or ``misses`` (needed a load,
    shared or not). ``loads`` counts loader calls, ``load_failures`` the ones
    that raised (other than ``LookupError``), ``stale_serves`` the misses
    answered with a stale value after a failed reload, ``evictions`` the
    entries dropped for room, ``size`` the entries held (expired ones included
    until evicted, reloaded or purged) and ``in_flight`` the loads running.

    Example::

        stats = cache.statistics()
        gauge.set(stats.size); print(stats.as_dict())
    """

    hits: int
    misses: int
    loads: int
    load_failures: int
    stale_serves: int
    evictions: int
    negative_hits: int
    size: int
    in_flight: int

    @property
    def hit_ratio(self) -> float:
        """Fresh answers (positive or negative) over all lookups; 0.0 when idle."""
        lookups = self.hits + self.negative_hits + self.misses
        return (self.hits + self.negative_hits) / lookups if lookups else 0.0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (metric name suffix -> value)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _Entry:
    # value is None for a negative ("absent") entry.
    value: Any
    # Fresh while now < expires_at; servable stale (positive entries only)
    # while now < stale_until; stale_until == expires_at for negative entries.
    expires_at: float
    stale_until: float
    # Set when invalidated: a reader holding this entry must not serve it stale.
    invalidated: bool = False


class _Load:
    """Token of one load in flight; ``valid`` is cleared when it is superseded."""

    __slots__ = ("valid",)

    def __init__(self) -> None:
        self.valid = True


class _CountingLRU(cachetools.LRUCache[Hashable, _Entry]):
    evictions = 0

    def popitem(self) -> tuple[Hashable, _Entry]:
        # cachetools calls popitem() only to make room, so each call is an eviction.
        item = super().popitem()
        self.evictions += 1
        return item


class _CountingLFU(cachetools.LFUCache[Hashable, _Entry]):
    evictions = 0

    def popitem(self) -> tuple[Hashable, _Entry]:
        item = super().popitem()
        self.evictions += 1
        return item


class LoadingCache(Generic[K, V]):
    """A bounded TTL cache in front of an async ``loader(key)``.

    ``loader`` returns the value, or ``None`` / raises ``LookupError`` (for
    example the store's ``NotFound``) when the key has no value. Its loads run
    in ``nursery``, which belongs to the cache's owner and must outlive the
    cache's callers; use :func:`open_loading_cache` to let the cache own one.

    Options (all keyword-only, checked at construction, ``InvalidConfig`` when
    out of domain; ``nan`` and ``inf`` never pass): ``maxsize`` >= 1 entries;
    ``ttl`` > 0 seconds; ``negative_ttl`` >= 0 (0 disables negative caching);
    ``jitter`` in [0, 1), the fraction by which a TTL may be shortened at
    random; ``stale_grace`` >= 0 seconds a value may be served past its TTL
    when reloading it fails; ``policy`` ``"lru"`` or ``"lfu"``; ``rng`` a
    seeded ``random.Random`` for reproducible jitter; ``name`` used in errors.

    Example::

        async with trio.open_nursery() as nursery:
            tenants = LoadingCache(load_tenant, nursery=nursery, ttl=30, stale_grace=60)
            tenant = await tenants.get("acme")          # NotFound if absent
            maybe = await tenants.get_or_none("nobody")  # None if absent
    """

    def __init__(
        self,
        loader: Callable[[K], Awaitable[V | None]],
        *,
        nursery: trio.Nursery,
        maxsize: int = 1024,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        jitter: float = 0.1,
        stale_grace: float = 0.0,
        policy: Policy = "lru",
        rng: random.Random | None = None,
        name: str = "cache",
    ) -> None:
        positive_int("maxsize", maxsize)
        self._ttl = seconds("ttl", ttl, allow_zero=False)
        self._negative_ttl = seconds("negative_ttl", negative_ttl)
        self._stale_grace = seconds("stale_grace", stale_grace)
        self._jitter = fraction("jitter", jitter)
        store: _CountingLRU | _CountingLFU
        if policy == "lru":
            store = _CountingLRU(maxsize)
        elif policy == "lfu":
            store = _CountingLFU(maxsize)
        else:
            raise InvalidConfig("policy", f"must be 'lru' or 'lfu', got {policy!r}")
        self._store = store
        self._loader = loader
        self._rng = rng if rng is not None else random.Random()
        self._name = name
        self._flight = SingleFlight(nursery, name=name)
        # Invariant: at most one *valid* load per key; only a valid load may
        # store its result. Holds only keys with a load in flight (bounded).
        self._loading: dict[Hashable, _Load] = {}
        self._hits = 0
        self._misses = 0
        self._negative_hits = 0
        self._loads = 0
        self._load_failures = 0
        self._stale_serves = 0

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    def __len__(self) -> int:
        return len(self._store)

    # ------------------------------------------------------------------ lookups

    async def get(self, key: K) -> V:
        """Return the value of ``key``, loading it on a miss.

        Raises :class:`~triotok.store.NotFound` (a ``LookupError``) when the loader
        says the key is absent (also from the negative cache), or the loader's
        error when a load fails and no stale value may be served. Always a
        checkpoint.

        Example::

            tenant = await cache.get("acme")
        """
        value = await self.get_or_none(key)
        if value is None:
            raise NotFound(f"{self._name}: no value for {key!r}")
        return value

    def get_nowait(self, key: K) -> V | None:
        """A fresh cached answer without a checkpoint, or :class:`trio.WouldBlock`.

        Returns the value (``None`` for a fresh negative entry) only while it is
        within its TTL; anything else (a miss, an expired or stale entry) raises
        ``trio.WouldBlock`` and the caller falls back to :meth:`get_or_none`.
        Hot paths use it to skip the scheduler round trip a hit would cost.

        Example::

            try:
                tenant = cache.get_nowait("acme")
            except trio.WouldBlock:
                tenant = await cache.get_or_none("acme")
        """
        entry = self._store.get(key)
        if entry is None or trio.current_time() >= entry.expires_at:
            raise trio.WouldBlock
        if entry.value is None:
            self._negative_hits += 1
            return None
        self._hits += 1
        return entry.value  # type: ignore[no-any-return]  # stored by _load: V

    async def get_or_none(self, key: K) -> V | None:
        """Like :meth:`get`, but return ``None`` when the key is absent.

        Example::

            if await cache.get_or_none("acme") is None: ...
        """
        # Checkpoint first so the lookup below and its answer are atomic.
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        entry = self._store.get(key)
        if entry is not None:
            if now < entry.expires_at:
                if entry.value is None:
                    self._negative_hits += 1
                    return None
                self._hits += 1
                return entry.value  # type: ignore[no-any-return]  # stored by _load: V
            if now >= entry.stale_until:
                # Past any use: drop it so it does not linger until evicted.
                self._store.pop(key, None)
                entry = None
        self._misses += 1
        try:
            return await self._flight.do(key, self._load, key)
        except ActorStopped:
            raise  # the owner is shutting down: a stale value would hide that
        except Exception:
            if (
                entry is not None
                and entry.value is not None
                and not entry.invalidated
                and trio.current_time() < entry.stale_until
            ):
                # Serve-stale-on-error: the reload failed within the grace period.
                self._stale_serves += 1
                return entry.value  # type: ignore[no-any-return]  # stored by _load: V
            raise

    # ------------------------------------------------------------------ invalidation

    def invalidate(self, key: K) -> None:
        """Drop ``key``; a load of it in flight will not store its result.

        Callers already waiting on that load still receive its value; the
        next ``get`` starts a new load. Sync and never blocks.

        Example::

            cache.invalidate("acme")  # on a tenant.updated event
        """
        entry = self._store.pop(key, None)
        if entry is not None:
            entry.invalidated = True
        load = self._loading.pop(key, None)
        if load is not None:
            load.valid = False
        self._flight.forget(key)

    def invalidate_all(self) -> None:
        """Drop every entry; no load in flight will store its result.

        Example::

            cache.invalidate_all()
        """
        for entry in self._store.values():
            entry.invalidated = True
        self._store.clear()
        for load in self._loading.values():
            load.valid = False
        self._loading.clear()
        self._flight.forget_all()

    def purge_expired(self) -> int:
        """Remove entries past any use (TTL and stale grace); return how many.

        Expired entries are otherwise dropped when looked up or evicted for
        room; call this from a periodic timer to free memory sooner.

        Example::

            removed = cache.purge_expired()
        """
        now = trio.current_time()
        dead = [k for k, e in self._store.items() if now >= e.stale_until]
        for k in dead:
            self._store.pop(k, None)
        return len(dead)

    def statistics(self) -> CacheStatistics:
        """Return a snapshot of the counters (see :class:`CacheStatistics`).

        Example::

            assert cache.statistics().loads == 1
        """
        return CacheStatistics(
            hits=self._hits,
            misses=self._misses,
            loads=self._loads,
            load_failures=self._load_failures,
            stale_serves=self._stale_serves,
            evictions=self._store.evictions,
            negative_hits=self._negative_hits,
            size=len(self._store),
            in_flight=len(self._loading),
        )

    # ------------------------------------------------------------------ loading

    def _lifetime(self, ttl: float) -> float:
        # Jitter only ever shortens a TTL: a value is never fresh past ``ttl``.
        if self._jitter == 0:
            return ttl
        return ttl * (1.0 - self._rng.uniform(0.0, self._jitter))

    async def _load(self, key: K) -> V | None:
        # Runs once per key in flight, inside the owner's nursery (SingleFlight).
        load = _Load()
        previous = self._loading.get(key)
        if previous is not None:
            # A newer load supersedes an abandoned one still unwinding.
            previous.valid = False
        self._loading[key] = load
        self._loads += 1
        try:
            value: V | None
            try:
                value = await self._loader(key)
            except LookupError:
                value = None
            except Exception:
                self._load_failures += 1
                raise
            if load.valid:
                self._put(key, value)
            return value
        finally:
            if self._loading.get(key) is load:
                del self._loading[key]

    def _put(self, key: K, value: V | None) -> None:
        now = trio.current_time()
        if value is None:
            if self._negative_ttl == 0:
                self._store.pop(key, None)
                return
            expires_at = now + self._lifetime(self._negative_ttl)
            self._store[key] = _Entry(None, expires_at, expires_at)
        else:
            expires_at = now + self._lifetime(self._ttl)
            self._store[key] = _Entry(value, expires_at, expires_at + self._stale_grace)


@asynccontextmanager
async def open_loading_cache(
    loader: Callable[[K], Awaitable[V | None]],
    *,
    maxsize: int = 1024,
    ttl: float = 60.0,
    negative_ttl: float = 5.0,
    jitter: float = 0.1,
    stale_grace: float = 0.0,
    policy: Policy = "lru",
    rng: random.Random | None = None,
    name: str = "cache",
) -> AsyncIterator[LoadingCache[K, V]]:
    """Open a :class:`LoadingCache` that owns the nursery its loads run in.

    Leaving the block cancels loads still in flight; their waiters get
    :class:`~triotok.actors.ActorStopped`.

    Example::

        async with open_loading_cache(load_tenant, ttl=30) as tenants:
            tenant = await tenants.get("acme")
    """
    async with owned_nursery() as nursery:
        yield LoadingCache(
            loader,
            nursery=nursery,
            maxsize=maxsize,
            ttl=ttl,
            negative_ttl=negative_ttl,
            jitter=jitter,
            stale_grace=stale_grace,
            policy=policy,
            rng=rng,
            name=name,
        )
