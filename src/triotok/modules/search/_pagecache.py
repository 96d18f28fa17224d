"""Answers of the read-model routes, kept for a moment per node: a page read twice costs one query.

Invariants and reasons:

* An entry is the exact answer (body bytes) of one route, tenant and query
  string. It is dropped when this node applies an event of its tenant
  (:meth:`PageCache.invalidate`, called by the projection after commit), and
  in any case after ``ttl`` seconds: another node may have applied an event,
  so on a cluster a list may be up to ``ttl`` older than the index (it
  follows the writes by the index lag anyway; reads that must see a write
  send ``min_token``, and those never use the cache).
* A read that started before an invalidation never stores its answer: each
  tenant has a generation, taken before the read and compared when storing,
  so an answer read from the index before an event applied cannot outlive it.
* Bounded: at most ``maxsize`` entries, least recently stored first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio

__all__ = ("PageCache", "PageCacheStatistics")


@dataclass(frozen=True, slots=True)
class PageCacheStatistics:
    """Answers kept, and how often one was reused, missing, or dropped for a change."""

    size: int
    hits: int
    misses: int
    invalidations: int


class PageCache:
    """See the module docstring; ``ttl=0`` turns it off."""

    def __init__(
        self,
        *,
        ttl: float = 0.5,
        maxsize: int = 10_000,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[float, bytes]] = OrderedDict()
        self._by_tenant: dict[str, set[tuple[str, str, bytes]]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def generation(self, tenant_id: str) -> tuple[int, int]:
        """Take before reading the index; give back to :meth:`put`."""
        return (self._epoch, self._generations.get(tenant_id, 0))

    def get(self, route: str, tenant_id: str, query: bytes) -> bytes | None:
        if self.ttl <= 0:
            return None
        key = (route, tenant_id, query)
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(
        self, route: str, tenant_id: str, query: bytes, body: bytes, generation: tuple[int, int]
    ) -> None:
        if self.ttl <= 0 or generation != self.generation(tenant_id):
            return  # the index changed for this tenant while the answer was read
        key = (route, tenant_id, query)
        self._entries[key] = (self._clock() + self.ttl, body)
        self._entries.move_to_end(key)
        self._by_tenant.setdefault(tenant_id, set()).add(key)
        while len(self._entries) > self.maxsize:
            oldest, _ = self._entries.popitem(last=False)
            self._forget(oldest)

    def invalidate(self, tenant_id: str) -> None:
        """Drop the tenant's answers (the projection applied one of its events)."""
        self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
        self.invalidations += 1
        for key in self._by_tenant.pop(tenant_id, ()):
            self._entries.pop(key, None)

    def invalidate_all(self) -> None:
        """Drop every answer (a rebuild of this node rewrote the index)."""
        self._epoch += 1
        self.invalidations += 1
        self._entries.clear()
        self._by_tenant.clear()

    def _drop(self, key: tuple[str, str, bytes]) -> None:
        self._entries.pop(key, None)
        self._forget(key)

    def _forget(self, key: tuple[str, str, bytes]) -> None:
        keys = self._by_tenant.get(key[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_tenant[key[1]]

    def statistics(self) -> PageCacheStatistics:
        return PageCacheStatistics(len(self._entries), self.hits, self.misses, self.invalidations)
