"""Sans-I/O passivation bookkeeping of an entities region: idle deadlines and LRU order.

A plain synchronous structure with time passed in (no trio import), so it can
be tested exhaustively; the region (``_entities.py``) feeds it
``trio.current_time()`` and decides what to do with the keys it names.

Invariants:

- it holds exactly the keys of the region's *active* entities, those not
  passivating; a key is added when its entity is activated and removed when
  its passivation starts (or it is gone);
- its order is least recently used first; a touch moves a key to the end and
  records ``now``.  Time never goes backwards, so the order is also sorted by
  last touch and the first key is always the next to become idle:
  :meth:`next_deadline` and :meth:`idle_key` are O(1);
- it never passivates anything itself: it names candidates and the region
  either passivates them (and removes them) or touches them (a busy entity is
  never passivated to make room or for idleness, only deferred).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from .._exceptions import InvalidConfig

__all__ = ("PassivationPolicy",)

K = TypeVar("K", bound=Hashable)


class PassivationPolicy(Generic[K]):
    """Which active entity is idle, and which is least recently used.

    >>> p = PassivationPolicy(idle=10.0, max_active=2)
    >>> p.activated("a", 0.0); p.activated("b", 1.0); p.activated("c", 2.0)
    >>> p.excess(), p.oldest()
    (1, 'a')
    >>> p.touched("a", 3.0); p.oldest(), p.next_deadline()
    ('b', 11.0)
    """

    __slots__ = ("_last", "idle", "max_active")

    def __init__(self, *, idle: float, max_active: int) -> None:
        if isinstance(idle, bool) or not isinstance(idle, int | float) or not math.isfinite(idle):
            raise InvalidConfig("idle", f"must be a finite number of seconds, got {idle!r}")
        if idle <= 0:
            raise InvalidConfig("idle", f"must be positive, got {idle!r}")
        if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
            raise InvalidConfig("max_active", f"must be an int >= 1, got {max_active!r}")
        self.idle = float(idle)
        self.max_active = max_active
        self._last: OrderedDict[K, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: object) -> bool:
        return key in self._last

    def activated(self, key: K, now: float) -> None:
        """``key``'s entity became active (or active again) at ``now``: most recently used."""
        self._last[key] = now
        self._last.move_to_end(key)

    def touched(self, key: K, now: float) -> None:
        """A command for ``key`` arrived at ``now`` (or a busy entity was deferred)."""
        last = self._last
        if key in last:
            last[key] = now
            last.move_to_end(key)

    def removed(self, key: K) -> None:
        """``key`` is no longer active (its passivation started, or it is gone)."""
        self._last.pop(key, None)

    def oldest(self) -> K | None:
        """The least recently used key (``None`` when nothing is active)."""
        return next(iter(self._last), None)

    def excess(self) -> int:
        """How many active entities are beyond ``max_active``."""
        return max(0, len(self._last) - self.max_active)

    def next_deadline(self) -> float:
        """When the least recently used key becomes idle (``inf`` when nothing is active)."""
        for last in self._last.values():
            return last + self.idle
        return math.inf

    def idle_key(self, now: float) -> K | None:
        """The least recently used key if it has been idle for ``idle`` seconds at ``now``."""
        for key, last in self._last.items():
            return key if last + self.idle <= now else None
        return None

    def keys(self) -> list[K]:
        """Active keys, least recently used first (for views and tests)."""
        return list(self._last)
