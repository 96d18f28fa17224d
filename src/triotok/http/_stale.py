"""The last good answer of each cacheable read, served (marked stale) while the store is down.

Routes declared ``serve_stale=True`` (reads only) keep a copy of their last
200 answer per ``(tenant, role, path, query)``, bounded in entries and bytes
(least recently used out first). When the store cannot be read, the request
pipeline answers that copy instead of running the handler (or after the
handler failed for want of the store), with RFC 9211 ``Cache-Status`` and
RFC 9111 ``Age``::

    Cache-Status: triotok; hit; ttl=-42; detail=store-unavailable
    Age: 42

Invariants: only a 200 answer of a read is kept; a copy is answered only to
a request that passed the same authentication, authorisation and tenant
checks as any other (the key is in the cache key's tenant and role); a copy
older than ``max_age`` seconds is never answered.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ("StaleCopy", "StaleResponses", "StaleStatistics")

Key = tuple[str, str, str, bytes]


@dataclass(frozen=True, slots=True)
class StaleCopy:
    """One kept answer: body, content type, headers worth repeating, when (clock time)."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...]
    stored_at: float


@dataclass(frozen=True, slots=True)
class StaleStatistics:
    """What the stale copies hold and how often one was answered."""

    entries: int
    bytes: int
    stored: int
    served: int
    misses: int
    evictions: int

    def as_dict(self) -> dict[str, int]:
        return {
            "entries": self.entries,
            "bytes": self.bytes,
            "stored": self.stored,
            "served": self.served,
            "misses": self.misses,
            "evictions": self.evictions,
        }


#: Headers of the original answer that the stale copy repeats.
_KEPT = ("ETag", "Last-Modified", "Location")


class StaleResponses:
    """A bounded LRU of the last good answers (see the module docstring)."""

    def __init__(
        self, *, max_entries: int = 10_000, max_bytes: int = 64 << 20, max_age: float = 3600.0
    ) -> None:
        self._copies: OrderedDict[Key, StaleCopy] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.max_age = max_age
        self._bytes = 0
        self._stored = 0
        self._served = 0
        self._misses = 0
        self._evictions = 0

    def keep(self, key: Key, body: bytes, content_type: str, headers: Any, now: float) -> None:
        size = len(body)
        if size > self._max_bytes // 16:
            return  # one huge answer must not flush everything else
        kept = tuple((name, headers[name]) for name in _KEPT if name in headers)
        previous = self._copies.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous.body)
        self._copies[key] = StaleCopy(body, content_type, kept, now)
        self._bytes += size
        self._stored += 1
        while len(self._copies) > self._max_entries or self._bytes > self._max_bytes:
            _, dropped = self._copies.popitem(last=False)
            self._bytes -= len(dropped.body)
            self._evictions += 1

    def find(self, key: Key, now: float) -> tuple[StaleCopy, int] | None:
        """The copy and its age in whole seconds, or ``None`` (none, or too old)."""
        copy = self._copies.get(key)
        if copy is None or now - copy.stored_at > self.max_age:
            self._misses += 1
            return None
        self._copies.move_to_end(key)
        self._served += 1
        return copy, max(0, math.floor(now - copy.stored_at))

    def statistics(self) -> StaleStatistics:
        return StaleStatistics(
            entries=len(self._copies),
            bytes=self._bytes,
            stored=self._stored,
            served=self._served,
            misses=self._misses,
            evictions=self._evictions,
        )


def stale_headers(copy: StaleCopy, age: int, detail: str) -> dict[str, str]:
    """The headers of a stale answer: the kept ones, ``Age`` and ``Cache-Status``."""
    headers = dict(copy.headers)
    headers["Age"] = str(age)
    headers["Cache-Status"] = f"triotok; hit; ttl={-age}; detail={detail}"
    return headers
