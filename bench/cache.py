"""LoadingCache: one load for a thundering herd, and hit latency against a bare TTLCache.

(a) 1,000 concurrent misses of one key: the number of loader calls (must be
    exactly 1) and each waiter's latency beyond the load itself (p50/p99).
(b) ``await cache.get(key)`` on a hit, p50/p99 in µs (budget: p99 < 50 µs),
    beside a bare ``cachetools.TTLCache`` lookup measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import cachetools
import trio

from bench._harness import Report, Row, percentiles, progress
from triotok.actors import LoadingCache, open_loading_cache

HIT_P99_BUDGET_US = 50.0


async def _herd(waiters: int, load_time: float) -> tuple[int, list[float]]:
    loads = 0
    load_done = 0.0

    async def loader(key: str) -> str:
        nonlocal loads, load_done
        loads += 1
        await trio.sleep(load_time)
        load_done = time.perf_counter()
        return f"tenant {key}"

    finished: list[float] = []

    async def waiter(cache: LoadingCache[str, str]) -> None:
        await cache.get("acme")
        finished.append(time.perf_counter())

    async with open_loading_cache(loader, ttl=60) as cache, trio.open_nursery() as nursery:
        for _ in range(waiters):
            nursery.start_soon(waiter, cache)
    # Latency beyond the load: from the loader returning to each waiter resuming.
    return loads, [(t - load_done) * 1e6 for t in finished]


async def _hits(n: int) -> list[float]:
    async def loader(key: str) -> str:
        await trio.lowlevel.checkpoint()
        return key

    samples: list[float] = []
    async with open_loading_cache(loader, ttl=3600, maxsize=1024) as cache:
        keys = [f"t{i}" for i in range(100)]
        for k in keys:
            await cache.get(k)
        perf = time.perf_counter
        for i in range(n):
            k = keys[i % 100]
            t0 = perf()
            await cache.get(k)
            samples.append((perf() - t0) * 1e6)
    return samples


def _bare_ttlcache(n: int) -> list[float]:
    bare: cachetools.TTLCache[str, str] = cachetools.TTLCache(maxsize=1024, ttl=3600)
    keys = [f"t{i}" for i in range(100)]
    for k in keys:
        bare[k] = k
    samples: list[float] = []
    perf = time.perf_counter
    for i in range(n):
        k = keys[i % 100]
        t0 = perf()
        bare.get(k)
        samples.append((perf() - t0) * 1e6)
    return samples


def main(args: argparse.Namespace) -> Report:
    quick = bool(getattr(args, "quick", False))
    report = Report("LoadingCache and SingleFlight")
    waiters = 1_000
    hits = 20_000 if quick else 200_000

    progress(f"herd: {waiters} concurrent misses of one key")
    loads, extra = trio.run(_herd, waiters, 0.05)
    report.add(
        Row("herd: loads for 1,000 concurrent misses", loads, "loads", budget="== 1", ok=loads == 1)
    )
    p50, p99 = percentiles(extra, 50, 99)
    report.add(Row("herd: waiter latency beyond load p50", p50, "µs"))
    report.add(Row("herd: waiter latency beyond load p99", p99, "µs"))

    progress(f"hits: {hits:,} lookups through LoadingCache.get")
    cache_samples = trio.run(_hits, hits)
    progress(f"hits: {hits:,} lookups on a bare cachetools.TTLCache")
    bare_samples = _bare_ttlcache(hits)
    c50, c99 = percentiles(cache_samples, 50, 99)
    b50, b99 = percentiles(bare_samples, 50, 99)
    report.add(Row("bare TTLCache.get p50", b50, "µs"))
    report.add(Row("bare TTLCache.get p99", b99, "µs"))
    report.add(Row("LoadingCache.get hit p50", c50, "µs"))
    report.add(
        Row(
            "LoadingCache.get hit p99",
            c99,
            "µs",
            budget=f"< {HIT_P99_BUDGET_US:g} µs",
            ok=c99 < HIT_P99_BUDGET_US,
        )
    )
    # Ratios below 1 show the overhead over a bare lookup (checkpoint, stats, entry).
    report.compare("LoadingCache.get hit p50", "bare TTLCache.get p50", higher_is_better=False)
    report.compare("LoadingCache.get hit p99", "bare TTLCache.get p99", higher_is_better=False)
    return report
