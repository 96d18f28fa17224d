"""Hypothesis state machine for LoadingCache on a live trio loop with a MockClock.

Readers, gated loads, time jumps, data changes and invalidations interleave in
any order hypothesis picks. Invariants: no value is served older than
``ttl + stale_grace`` after it was loaded, never more than one (non-superseded)
load per key is in flight, a read that starts after ``invalidate(key)`` never
sees data from before it, and no reader is left waiting without a load.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from triotok._exceptions import ActorStopped, NotFound
from triotok.resilience import LoadingCache
from triotok.resilience._cache import _Entry
from triotok.testing._loop import LoopThread

TTL, NEGATIVE_TTL, GRACE = 10.0, 3.0, 5.0
KEYS = ("a", "b")


@dataclass(frozen=True)
class Value:
    key: str
    version: int
    loaded_at: float


@dataclass
class Load:
    lid: int
    key: str
    version: int  # the data version the load read when it started ("in transit")
    release: trio.Event = field(default_factory=trio.Event)
    outcome: str = "ok"  # ok | absent | error, set when released
    status: str = "running"  # running | done | cancelled
    superseded: bool = False


@dataclass
class Reader:
    key: str
    min_version: int  # version at the key's last invalidation before the read began
    scope: trio.CancelScope | None = None
    status: str = "pending"  # pending | value | absent | error | cancelled | stopped
    result: Any = None
    returned_at: float | None = None


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.driver = LoopThread(name="driver")
        self.ids = itertools.count()
        self.loads: dict[int, Load] = {}
        self.readers: list[Reader] = []
        self.versions = dict.fromkeys(KEYS, 0)
        self.present = dict.fromkeys(KEYS, True)
        self.invalidated_at = dict.fromkeys(KEYS, 0)

        async def start() -> None:
            self.cache = await self.driver.system.start(self._owner)

        self.driver.call(start)

    async def _owner(self, task_status: trio.TaskStatus[LoadingCache[str, Value]]) -> None:
        async with trio.open_nursery() as owner:
            task_status.started(
                LoadingCache(
                    self._loader,
                    nursery=owner,
                    maxsize=1,
                    ttl=TTL,
                    negative_ttl=NEGATIVE_TTL,
                    stale_grace=GRACE,
                    jitter=0.3,
                    rng=random.Random(0),
                )
            )
            await trio.sleep_forever()

    async def _loader(self, key: str) -> Value | None:
        load = Load(next(self.ids), key, self.versions[key])
        absent = not self.present[key]
        self.loads[load.lid] = load
        try:
            await load.release.wait()
        except trio.Cancelled:
            load.status = "cancelled"
            raise
        load.status = "done"
        if load.outcome == "error":
            raise RuntimeError(f"load {load.lid} failed")
        if load.outcome == "absent" or absent:
            return None
        return Value(key, load.version, trio.current_time())

    async def _read(self, reader: Reader) -> None:
        with trio.CancelScope() as scope:
            reader.scope = scope
            try:
                reader.result = await self.cache.get(reader.key)
                reader.status = "value"
            except NotFound:
                reader.status = "absent"
            except ActorStopped:
                reader.status = "stopped"
            except RuntimeError as exc:
                reader.status = "error"
                reader.result = exc
            reader.returned_at = trio.current_time()
        if scope.cancelled_caught:
            reader.status = "cancelled"

    def _running(self) -> list[Load]:
        return [ld for ld in self.loads.values() if ld.status == "running"]

    def _pending(self) -> list[Reader]:
        return [r for r in self.readers if r.status == "pending"]

    # ------------------------------------------------------------------ rules

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: str) -> None:
        reader = Reader(key, self.invalidated_at[key])
        self.readers.append(reader)
        self.driver.call(lambda: self.driver.system.start_soon(self._read, reader))

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "ok", "absent", "error"]))
    def finish_load(self, data: st.DataObject, outcome: str) -> None:
        load = data.draw(st.sampled_from(sorted(self._running(), key=lambda ld: ld.lid)))
        load.outcome = outcome
        self.driver.call(load.release.set)
        assert load.status == "done"

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def cancel_reader(self, data: st.DataObject) -> None:
        reader = data.draw(st.sampled_from(self._pending()))
        assert reader.scope is not None
        self.driver.call(reader.scope.cancel)
        assert reader.status == "cancelled"

    @rule(dt=st.sampled_from([0.5, 4.0, 8.0, 16.0]))
    def advance_time(self, dt: float) -> None:
        self.driver.call(lambda: self.driver.clock.jump(dt))

    @rule(key=st.sampled_from(KEYS), present=st.booleans())
    def change_data(self, key: str, present: bool) -> None:
        # A change nobody announces: the cache may serve the old data until TTL.
        self.versions[key] += 1
        self.present[key] = present

    @rule(key=st.sampled_from(KEYS))
    def change_and_invalidate(self, key: str) -> None:
        self.versions[key] += 1
        self.invalidated_at[key] = self.versions[key]
        for load in self._running():
            if load.key == key:
                load.superseded = True
        self.driver.call(lambda: self.cache.invalidate(key))

    @rule()
    def change_all_and_invalidate_all(self) -> None:
        for key in KEYS:
            self.versions[key] += 1
            self.invalidated_at[key] = self.versions[key]
        for load in self._running():
            load.superseded = True
        self.driver.call(self.cache.invalidate_all)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def never_more_than_one_valid_load_per_key(self) -> None:
        for key in KEYS:
            valid = [ld for ld in self._running() if ld.key == key and not ld.superseded]
            assert len(valid) <= 1
        assert self.cache.statistics().in_flight == len(
            [ld for ld in self._running() if not ld.superseded]
        )

    @invariant()
    def never_serves_a_value_older_than_ttl_plus_grace(self) -> None:
        for r in self.readers:
            if r.status == "value":
                assert r.returned_at is not None
                assert r.returned_at - r.result.loaded_at <= TTL + GRACE

    @invariant()
    def stored_entries_respect_their_bounds(self) -> None:
        for key, entry in list(self.cache._store.items()):
            assert isinstance(entry, _Entry)
            if entry.value is not None:
                assert entry.expires_at - entry.value.loaded_at <= TTL
                assert math.isclose(entry.stale_until - entry.expires_at, GRACE)
                # An invalidation is never undone by a load that was in flight.
                assert entry.value.version >= self.invalidated_at[key]
            else:
                assert entry.stale_until == entry.expires_at

    @invariant()
    def reads_after_invalidation_see_newer_data(self) -> None:
        for r in self.readers:
            if r.status == "value":
                assert r.result.version >= r.min_version

    @invariant()
    def no_reader_waits_without_a_load(self) -> None:
        if self._pending():
            assert self._running()

    @invariant()
    def every_lookup_is_counted_once(self) -> None:
        stats = self.cache.statistics()
        assert stats.hits + stats.negative_hits + stats.misses == len(self.readers)
        assert stats.loads == len(self.loads)
        assert stats.size <= 1

    def teardown(self) -> None:
        self.driver.close()


CacheMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestCacheMachine = CacheMachine.TestCase
