"""Circuit breaker overhead and rate limiter throughput, against bare calls, in one run.

Rows: a direct ``await fn()`` of a trivial async function (the baseline),
``await breaker.call(fn)`` and ``async with breaker: await fn()`` on a CLOSED
breaker (ns per call, ratio against the baseline, and the absolute overhead),
the fail-fast cost of a rejected call on an open breaker, and rate limiter
checks per second (one hot key; 100,000 rotating keys through a bounded
table; the trio-facing ``RateLimiter.try_hit``).
Cache figures live in ``bench/cache.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Awaitable, Callable

import trio

from bench._harness import Report, Row, best_of, progress
from triotok.resilience import GcraTable
from triotok.supervision import CircuitBreaker, CircuitOpen, RateLimit, RateLimiter

REPEATS = 3


async def noop() -> None:
    return None


# ----------------------------------------------------------------- breaker


async def direct_ns(n: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(n):
        await noop()
    return (time.perf_counter_ns() - started) / n


async def call_ns(n: int) -> float:
    breaker = CircuitBreaker("bench", window_size=100, minimum_calls=10)
    started = time.perf_counter_ns()
    for _ in range(n):
        await breaker.call(noop)
    return (time.perf_counter_ns() - started) / n


async def context_ns(n: int) -> float:
    breaker = CircuitBreaker("bench", window_size=100, minimum_calls=10)
    started = time.perf_counter_ns()
    for _ in range(n):
        async with breaker:
            await noop()
    return (time.perf_counter_ns() - started) / n


async def rejected_ns(n: int) -> float:
    breaker = CircuitBreaker("bench")
    breaker.force_open()
    started = time.perf_counter_ns()
    for _ in range(n):
        with contextlib.suppress(CircuitOpen):
            await breaker.call(noop)
    return (time.perf_counter_ns() - started) / n


def best_ns(fn: Callable[[int], Awaitable[float]], n: int) -> float:
    """Lowest ns/call of REPEATS runs, each in a fresh trio run."""
    return min(trio.run(fn, n) for _ in range(REPEATS))


# ----------------------------------------------------------------- limiter


def hot_key_rate(n: int) -> float:
    limiter = GcraTable(RateLimit(1_000_000, 1e9))
    check = limiter.check
    started = time.perf_counter()
    for i in range(n):
        check("tenant-a", i * 1e-6)
    return n / (time.perf_counter() - started)


def many_keys_rate(n: int) -> float:
    limiter = GcraTable(RateLimit(10, 1.0), max_keys=10_000)
    keys = [f"tenant-{i}" for i in range(100_000)]
    check = limiter.check
    started = time.perf_counter()
    for i in range(n):
        check(keys[i % 100_000], i * 1e-6)
    elapsed = time.perf_counter() - started
    assert len(limiter) <= 10_000
    return n / elapsed


def trio_hit_rate(n: int) -> float:
    async def run() -> float:
        limiter = RateLimiter(RateLimit(1_000_000, 1e9))
        started = time.perf_counter()
        for _ in range(n):
            limiter.try_hit("tenant-a")
        return n / (time.perf_counter() - started)

    return trio.run(run)


# ----------------------------------------------------------------- main


def main(args: argparse.Namespace) -> Report:
    """Measure everything above; ``args.quick`` shrinks the counts ten-fold."""
    calls = 20_000 if args.quick else 200_000
    checks = 20_000 if args.quick else 300_000
    report = Report("resilience: circuit breaker and rate limiter")

    progress(f"direct await, {calls:,} calls x {REPEATS}")
    report.add(Row("direct await fn()", best_ns(direct_ns, calls), "ns/call"))
    progress(f"breaker.call, {calls:,} calls x {REPEATS}")
    report.add(Row("await breaker.call(fn)", best_ns(call_ns, calls), "ns/call"))
    progress(f"async with breaker, {calls:,} calls x {REPEATS}")
    report.add(Row("async with breaker", best_ns(context_ns, calls), "ns/call"))
    base = report.get("direct await fn()").value
    for name in ("await breaker.call(fn)", "async with breaker"):
        # ratio > 1 means better (harness convention), so below 1 is the slowdown.
        report.compare(name, "direct await fn()", higher_is_better=False)
        row = report.get(name)
        row.extra["overhead_ns"] = row.value - base
        row.extra["slowdown"] = row.value / base
    progress(f"rejected by an open breaker, {calls // 4:,} calls x {REPEATS}")
    report.add(
        Row("breaker.call rejected (forced open)", best_ns(rejected_ns, calls // 4), "ns/call")
    )

    progress(f"limiter, one hot key, {checks:,} checks x {REPEATS}")
    report.add(
        Row("GcraTable.check, one key", best_of(REPEATS, lambda: hot_key_rate(checks)), "checks/s")
    )
    progress(f"limiter, 100,000 rotating keys (max 10,000), {checks:,} checks x {REPEATS}")
    report.add(
        Row(
            "GcraTable.check, 100k keys",
            best_of(REPEATS, lambda: many_keys_rate(checks)),
            "checks/s",
        )
    )
    progress(f"RateLimiter.try_hit in trio, {checks:,} checks x {REPEATS}")
    report.add(
        Row(
            "RateLimiter.try_hit (trio clock)",
            best_of(REPEATS, lambda: trio_hit_rate(checks)),
            "checks/s",
        )
    )
    return report
