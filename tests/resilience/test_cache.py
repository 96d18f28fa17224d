"""Example tests for LoadingCache: TTL, negative caching, jitter, stale-on-error, invalidation."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from triotok._exceptions import ActorStopped, InvalidConfig, NotFound
from triotok.resilience import CacheStatistics, LoadingCache, open_loading_cache


class Source:
    """A loader backed by a dict; optionally blocks on a gate or fails."""

    def __init__(self, data: dict[str, object] | None = None) -> None:
        self.data: dict[str, object] = dict(data or {})
        self.loads: list[str] = []
        self.gate: trio.Event | None = None
        self.fail: Exception | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, key: str) -> object | None:
        self.loads.append(key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Read first, then wait: the answer is "in transit" while gated, so
            # an invalidation meanwhile makes it stale.
            value, fail = self.data.get(key), self.fail
            if self.gate is not None:
                await self.gate.wait()
            else:
                await trio.lowlevel.checkpoint()
            if fail is not None:
                raise fail
            return value
        finally:
            self.in_flight -= 1


def cache_of(
    source: Callable[[str], Awaitable[object | None]], nursery: trio.Nursery, **options: object
) -> LoadingCache[str, object]:
    options.setdefault("jitter", 0.0)
    return LoadingCache(source, nursery=nursery, **options)  # type: ignore[arg-type]  # test options


async def test_hit_miss_and_ttl_expiry(autojump_clock: trio.testing.MockClock) -> None:
    src = Source({"a": 1})
    async with trio.open_nursery() as nursery:
        cache = cache_of(src, nursery, ttl=10)
        assert await cache.get("a") == 1
        await trio.sleep(9.9)
        assert await cache.get("a") == 1
        assert src.loads == ["a"]
        await trio.sleep(0.2)  # past the TTL
        src.data["a"] = 2
        assert await cache.get("a") == 2
        assert src.loads == ["a", "a"]
        stats = cache.statistics()
        assert (stats.hits, stats.misses, stats.loads, stats.size) == (1, 2, 2, 1)
        nursery.cancel_scope.cancel()


async def test_negative_caching_has_its_own_ttl(autojump_clock: trio.testing.MockClock) -> None:
    src = Source()
    async with open_loading_cache(src, ttl=60, negative_ttl=5, jitter=0) as cache:
        with pytest.raises(NotFound):
            await cache.get("ghost")
        assert await cache.get_or_none("ghost") is None
        assert src.loads == ["ghost"]
        assert cache.statistics().negative_hits == 1
        src.data["ghost"] = "boo"
        await trio.sleep(4.9)
        assert await cache.get_or_none("ghost") is None
        await trio.sleep(0.2)
        assert await cache.get("ghost") == "boo"
        assert src.loads == ["ghost", "ghost"]


async def test_loader_lookup_error_means_absent(autojump_clock: trio.testing.MockClock) -> None:
    src = Source()
    src.fail = NotFound("no such tenant")
    async with open_loading_cache(src, negative_ttl=5) as cache:
        assert await cache.get_or_none("t") is None
        assert await cache.get_or_none("t") is None
        stats = cache.statistics()
        assert (stats.loads, stats.load_failures, stats.negative_hits) == (1, 0, 1)


async def test_zero_negative_ttl_disables_negative_caching() -> None:
    src = Source()
    async with open_loading_cache(src, negative_ttl=0) as cache:
        assert await cache.get_or_none("x") is None
        assert await cache.get_or_none("x") is None
        assert len(src.loads) == 2
        assert len(cache) == 0


async def test_jitter_spreads_expiries_and_never_exceeds_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    keys = [f"k{i}" for i in range(50)]
    src = Source(dict.fromkeys(keys, "v"))
    async with open_loading_cache(src, ttl=100, jitter=0.5, rng=random.Random(7)) as cache:
        for k in keys:
            await cache.get(k)
        start = trio.current_time()
        deadlines = [cache._store[k].expires_at - start for k in keys]  # white-box: spread
        assert len({round(d, 6) for d in deadlines}) > 40
        assert all(50 <= d <= 100 for d in deadlines)
        # Behaviour: half way through the jitter band some keys reload, others do not.
        await trio.sleep(75)
        src.loads.clear()
        for k in keys:
            await cache.get(k)
        assert 0 < len(src.loads) < len(keys)


async def test_seeded_jitter_is_reproducible(autojump_clock: trio.testing.MockClock) -> None:
    async def run() -> list[float]:
        async with open_loading_cache(
            Source({"a": 1, "b": 2}), ttl=10, jitter=0.3, rng=random.Random(1)
        ) as cache:
            await cache.get("a")
            await cache.get("b")
            return [cache._store[k].expires_at - trio.current_time() for k in "ab"]

    assert await run() == await run()


async def test_stale_on_error_within_grace_then_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = Source({"a": "old"})
    async with open_loading_cache(src, ttl=10, stale_grace=30, jitter=0) as cache:
        assert await cache.get("a") == "old"
        src.fail = RuntimeError("store down")
        await trio.sleep(15)  # expired, inside the grace period
        assert await cache.get("a") == "old"
        await trio.sleep(26)  # 41s after loading: past ttl + grace (40s)
        with pytest.raises(RuntimeError, match="store down"):
            await cache.get("a")
        stats = cache.statistics()
        assert (stats.stale_serves, stats.load_failures, stats.loads) == (1, 2, 3)
        src.fail = None
        src.data["a"] = "new"
        assert await cache.get("a") == "new"


async def test_failure_without_stale_value_propagates_and_is_not_cached() -> None:
    src = Source({"a": 1})
    src.fail = ValueError("bad")
    async with open_loading_cache(src, stale_grace=100) as cache:
        with pytest.raises(ValueError, match="bad"):
            await cache.get("a")
        src.fail = None
        assert await cache.get("a") == 1
        assert len(src.loads) == 2


async def test_negative_entries_are_never_served_stale(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = Source()
    async with open_loading_cache(src, negative_ttl=5, stale_grace=100, jitter=0) as cache:
        assert await cache.get_or_none("a") is None
        await trio.sleep(6)
        src.fail = RuntimeError("down")
        with pytest.raises(RuntimeError):
            await cache.get_or_none("a")


async def test_concurrent_misses_make_exactly_one_load() -> None:
    src = Source({"hot": 42})
    src.gate = trio.Event()
    got: list[object] = []

    async def reader(cache: LoadingCache[str, object]) -> None:
        got.append(await cache.get("hot"))

    async with open_loading_cache(src) as cache, trio.open_nursery() as readers:
        for _ in range(1000):
            readers.start_soon(reader, cache)
        await trio.testing.wait_all_tasks_blocked()
        assert cache.statistics().in_flight == 1
        src.gate.set()
    assert src.loads == ["hot"]
    assert got == [42] * 1000
    stats = cache.statistics()
    assert (stats.loads, stats.misses, stats.in_flight) == (1, 1000, 0)


async def test_invalidate_during_load_does_not_resurrect_old_value() -> None:
    src = Source({"a": "v1"})
    old_gate = src.gate = trio.Event()
    got: list[object] = []

    async def reader(cache: LoadingCache[str, object]) -> None:
        got.append(await cache.get("a"))

    async with open_loading_cache(src) as cache, trio.open_nursery() as readers:
        readers.start_soon(reader, cache)
        await trio.testing.wait_all_tasks_blocked()  # the load has read "v1"
        src.data["a"] = "v2"
        cache.invalidate("a")
        src.gate = None
        # The next get starts a fresh load instead of joining the old one.
        assert await cache.get("a") == "v2"
        old_gate.set()  # the old load now finishes with "v1"
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["v1"]  # its waiter gets what it awaited...
        assert await cache.get("a") == "v2"  # ...but "v1" was not stored
    assert len(src.loads) == 2
    assert cache.statistics().hits == 1


async def test_invalidated_load_result_is_not_stored_but_waiters_get_it() -> None:
    release = trio.Event()
    version = {"a": 1}

    async def loader(key: str) -> int:
        seen = version[key]  # read *before* blocking: the value is then stale
        await release.wait()
        return seen

    got: list[int] = []

    async def reader(cache: LoadingCache[str, int]) -> None:
        got.append(await cache.get("a"))

    async with open_loading_cache(loader) as cache, trio.open_nursery() as readers:
        readers.start_soon(reader, cache)
        await trio.testing.wait_all_tasks_blocked()
        version["a"] = 2
        cache.invalidate("a")
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert got == [1]  # the waiter gets what it awaited
        assert len(cache) == 0  # but it is not stored
        assert await cache.get("a") == 2


async def test_invalidate_all_during_loads_stores_nothing_old() -> None:
    release = trio.Event()
    version = 1

    async def loader(key: str) -> str:
        seen = f"{key}{version}"
        await release.wait()
        return seen

    async with open_loading_cache(loader) as cache, trio.open_nursery() as readers:
        for k in "abc":
            readers.start_soon(cache.get, k)
        await trio.testing.wait_all_tasks_blocked()
        assert cache.statistics().in_flight == 3
        version = 2
        cache.invalidate_all()
        assert cache.statistics().in_flight == 0
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert len(cache) == 0
        assert await cache.get("a") == "a2"


async def test_invalidate_drops_entry() -> None:
    src = Source({"a": 1})
    async with open_loading_cache(src) as cache:
        await cache.get("a")
        src.data["a"] = 2
        cache.invalidate("a")
        cache.invalidate("never-seen")
        assert await cache.get("a") == 2


async def test_lru_bound_counts_evictions() -> None:
    src = Source({k: k for k in "abcd"})
    async with open_loading_cache(src, maxsize=2) as cache:
        await cache.get("a")
        await cache.get("b")
        await cache.get("a")  # b is now least recently used
        await cache.get("c")
        assert set(cache._store) == {"a", "c"}
        assert cache.statistics().evictions == 1


async def test_lfu_policy_keeps_frequent_keys() -> None:
    src = Source({k: k for k in "abc"})
    async with open_loading_cache(src, maxsize=2, policy="lfu") as cache:
        for _ in range(3):
            await cache.get("a")
        await cache.get("b")
        await cache.get("c")  # evicts b, the least frequently used
        assert set(cache._store) == {"a", "c"}
        assert cache.statistics().evictions == 1


async def test_purge_expired(autojump_clock: trio.testing.MockClock) -> None:
    src = Source({"a": 1, "b": 2})
    async with open_loading_cache(src, ttl=10, stale_grace=5, jitter=0) as cache:
        await cache.get("a")
        await trio.sleep(8)
        await cache.get("b")
        await trio.sleep(8)  # a is past ttl+grace (16 > 15), b is fresh
        assert cache.purge_expired() == 1
        assert set(cache._store) == {"b"}


async def test_cancelled_reader_does_not_cancel_the_load() -> None:
    src = Source({"a": 1})
    src.gate = trio.Event()
    got: list[object] = []

    async def reader(cache: LoadingCache[str, object]) -> None:
        got.append(await cache.get("a"))

    async with open_loading_cache(src) as cache, trio.open_nursery() as readers:
        readers.start_soon(reader, cache)
        with trio.move_on_after(0) as scope:
            await cache.get("a")
        assert scope.cancelled_caught
        src.gate.set()
    assert got == [1]
    assert src.loads == ["a"]


async def test_closing_cache_gives_waiters_actor_stopped() -> None:
    src = Source({"a": 1})
    src.gate = trio.Event()
    errors: list[BaseException] = []

    async def reader(cache: LoadingCache[str, object]) -> None:
        try:
            await cache.get("a")
        except ActorStopped as exc:
            errors.append(exc)

    opened = open_loading_cache(src, name="/app/tenants", stale_grace=10)
    async with trio.open_nursery() as readers, opened as cache:
        readers.start_soon(reader, cache)
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 1
    assert cache.statistics().in_flight == 0


async def test_statistics_snapshot_and_as_dict() -> None:
    src = Source({"a": 1})
    async with open_loading_cache(src) as cache:
        assert cache.statistics().hit_ratio == 0.0
        await cache.get("a")
        await cache.get("a")
        stats = cache.statistics()
    assert isinstance(stats, CacheStatistics)
    assert stats.as_dict() == {
        "hits": 1,
        "misses": 1,
        "loads": 1,
        "load_failures": 0,
        "stale_serves": 0,
        "evictions": 0,
        "negative_hits": 0,
        "size": 1,
        "in_flight": 0,
    }
    assert stats.hit_ratio == 0.5
    with pytest.raises(AttributeError):
        stats.hits = 5  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": 1.5}, "maxsize"),
        ({"maxsize": True}, "maxsize"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"negative_ttl": -0.1}, "negative_ttl"),
        ({"stale_grace": -1}, "stale_grace"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.01}, "jitter"),
        ({"policy": "fifo"}, "policy"),
    ],
)
async def test_invalid_config(options: dict[str, object], field: str) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(InvalidConfig) as info:
            LoadingCache(Source(), nursery=nursery, **options)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


async def test_grace_running_out_during_the_reload_propagates_the_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = Source({"a": "old"})
    async with open_loading_cache(src, ttl=10, stale_grace=5, jitter=0) as cache:
        await cache.get("a")
        await trio.sleep(12)  # expired, within the grace period
        src.fail = RuntimeError("store down")
        src.gate = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_release_after, src.gate, 10.0)  # reload ends at t=22 > 15
            with pytest.raises(RuntimeError, match="store down"):
                await cache.get("a")
        assert cache.statistics().stale_serves == 0


async def _release_after(event: trio.Event, delay: float) -> None:
    await trio.sleep(delay)
    event.set()


@pytest.mark.parametrize("invalidate_all", [False, True])
async def test_invalidated_value_is_never_served_stale(
    autojump_clock: trio.testing.MockClock, invalidate_all: bool
) -> None:
    src = Source({"a": "old"})
    async with open_loading_cache(src, ttl=10, stale_grace=60, jitter=0) as cache:
        await cache.get("a")
        await trio.sleep(11)  # expired, inside the grace period
        src.fail = RuntimeError("store down")
        src.gate = trio.Event()
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                with pytest.raises(RuntimeError, match="store down"):
                    await cache.get("a")

            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()  # the reload is in flight
            if invalidate_all:
                cache.invalidate_all()
            else:
                cache.invalidate("a")
            src.gate.set()
        assert cache.statistics().stale_serves == 0


async def test_get_nowait_answers_fresh_entries_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    loads: list[str] = []

    async def loader(key: str) -> str | None:
        loads.append(key)
        return None if key == "ghost" else key.upper()

    async with open_loading_cache(loader, ttl=10, negative_ttl=1, jitter=0) as cache:
        with pytest.raises(trio.WouldBlock):
            cache.get_nowait("acme")
        assert await cache.get("acme") == "ACME"
        assert cache.get_nowait("acme") == "ACME"
        assert await cache.get_or_none("ghost") is None
        assert cache.get_nowait("ghost") is None  # a fresh negative entry
        await trio.sleep(10)
        with pytest.raises(trio.WouldBlock):
            cache.get_nowait("acme")  # expired: the caller must reload
        stats = cache.statistics()
        assert (stats.hits, stats.negative_hits) == (1, 1)
        assert loads == ["acme", "ghost"]
