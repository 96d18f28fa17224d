"""Entity actors: round trip against a plain ask, activation with a SQLite load,
throughput over many keys with passivation, memory per entity, tree polling.

Rows, all measured in this run:

* command round trip to an already active entity against ``ask`` to one
  plain actor (1 caller each, alternating rounds, best of N);
* activation latency, passivated → first reply, where ``on_start`` loads one
  row from a real SQLite file: p50/p99 (budget p99 < 2 ms);
* commands/s spread uniformly over 1,000 and over 100,000 keys with
  ``max_active=1,000`` (the latter activates and passivates all the time);
* RSS per active entity with 10,000 active (budget < 5 KB), and RSS at the
  start and end of 100,000 activations with ``max_active=1,000`` (flat);
* polling the tree with a 10,000-entity region: the region alone
  (``prefix=..., depth=0``) and the whole subtree.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import random
import tempfile
import time
from collections.abc import Hashable
from typing import Any

import trio

from bench._harness import Report, Row, percentiles, progress
from triotok import Actor, open_system
from triotok.store import Store, open_store
from triotok.supervision import Entities

CALLERS = 32


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


class Counter(Actor):
    """A small entity: a key and an integer of state."""

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.total = 0

    async def receive(self, message: Any) -> Any:
        self.total += 1
        return self.total


class Loaded(Actor):
    """Loads its row in ``on_start``."""

    def __init__(self, key: Hashable, store: Store) -> None:
        self.key, self.store = key, store
        self.row: Any = None

    async def on_start(self) -> None:
        self.row = await self.store.fetchrow(
            "SELECT total, version FROM bench_entities WHERE id = $1", self.key
        )

    async def receive(self, message: Any) -> Any:
        return self.row["total"]


async def plain_ask(n: int) -> float:
    async with open_system(name="bench") as system:
        ref = await system.spawn(Echo, name="echo")
        await ref.ask(0)
        started = time.perf_counter()
        for i in range(n):
            await ref.ask(i)
        return n / (time.perf_counter() - started)


async def entity_ask(n: int) -> float:
    async with open_system(name="bench") as system:
        region = await system.spawn_entities(Entities("e", factory=Counter))
        await region.ask("k", 0)
        started = time.perf_counter()
        for i in range(n):
            await region.ask("k", i)
        return n / (time.perf_counter() - started)


async def activation_latency(n: int) -> list[float]:
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(f"sqlite:///{tmp}/bench.db") as store:
            await store.execute(
                "CREATE TABLE bench_entities (id TEXT PRIMARY KEY, total INTEGER, version INTEGER)"
            )
            async with store.transaction() as tx:
                for i in range(n):
                    await tx.execute("INSERT INTO bench_entities VALUES ($1, $2, 0)", f"k{i}", i)
            async with open_system(name="bench") as system:
                spec = Entities("e", factory=lambda key: Loaded(key, store), max_active=1_000)
                region = await system.spawn_entities(spec)
                keys = [f"k{i}" for i in range(n)]
                random.Random(1).shuffle(keys)
                for i, key in enumerate(keys):
                    if i % 1000 == 0:
                        progress(f"activations {i}/{n}")
                    started = time.perf_counter()
                    await region.ask(key, "get")
                    samples.append(time.perf_counter() - started)
                    if i % 2:  # half of them passivated again: passivated → first reply
                        await region.passivate(key)
                for key in keys[1::2]:
                    started = time.perf_counter()
                    await region.ask(key, "get")
                    samples.append(time.perf_counter() - started)
    return samples


async def spread(n: int, keys: int, max_active: int) -> tuple[float, dict[str, Any]]:
    async with open_system(name="bench") as system:
        region = await system.spawn_entities(Entities("e", factory=Counter, max_active=max_active))
        rng = random.Random(2)
        plan = [rng.randrange(keys) for _ in range(n)]
        per = n // CALLERS

        async def caller(part: list[int]) -> None:
            for key in part:
                await region.ask(key, 1)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for c in range(CALLERS):
                nursery.start_soon(caller, plan[c * per : (c + 1) * per])
        rate = per * CALLERS / (time.perf_counter() - started)
        return rate, region.statistics().as_dict()


async def memory(active: int, activations: int, max_active: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with open_system(name="bench") as system:
        big = await system.spawn_entities(Entities("big", factory=Counter, max_active=active + 1))
        gc.collect()
        before = rss()
        for i in range(active):
            await big.ask(i, 1)
        gc.collect()
        out["per_entity"] = (rss() - before) / active
        # Tree polling with ``active`` entities.
        best_region = best_full = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            system.tree(prefix="/bench/big", depth=0)
            best_region = min(best_region, time.perf_counter() - started)
            started = time.perf_counter()
            system.tree(prefix="/bench/big")
            best_full = min(best_full, time.perf_counter() - started)
        out["tree_region_ms"] = best_region * 1e3
        out["tree_full_ms"] = best_full * 1e3
        await system.stop_actor("/bench/big")

        churn = await system.spawn_entities(
            Entities("churn", factory=Counter, max_active=max_active)
        )
        for i in range(max_active * 2):
            await churn.ask(i, 1)
        gc.collect()
        out["churn_start"] = rss()
        for i in range(max_active * 2, activations):
            if i % 20_000 == 0:
                progress(f"churn {i}/{activations}")
            await churn.ask(i, 1)
        gc.collect()
        out["churn_end"] = rss()
        stats = churn.statistics()
        out["churn_active"] = stats.active
        out["churn_activations"] = stats.activations
    return out


def _memory_in_fresh_process(active: int, activations: int, max_active: int) -> dict[str, float]:
    """RSS figures need a process whose allocator has not been grown by earlier rows."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, float] = pool.apply(_memory_main, (active, activations, max_active))
    return result


def _memory_main(active: int, activations: int, max_active: int) -> dict[str, float]:
    logging.getLogger("triotok").setLevel(logging.ERROR)
    return trio.run(memory, active, activations, max_active)


def main(args: argparse.Namespace) -> Report:
    quick = bool(getattr(args, "quick", False))
    rounds = 1 if quick else 5
    n_ask = 20_000 if quick else 100_000
    report = Report("entities: entity actors vs a plain ask, activation, passivation, memory")
    logging.getLogger("triotok").setLevel(logging.ERROR)

    best_plain = best_entity = 0.0
    for i in range(rounds):
        progress(f"round trip: round {i + 1}/{rounds}")
        best_plain = max(best_plain, trio.run(plain_ask, n_ask))
        best_entity = max(best_entity, trio.run(entity_ask, n_ask))
    report.add(Row("plain ask to one actor (1 caller)", best_plain, "rt/s"))
    report.add(Row("entity command, active (1 caller)", best_entity, "rt/s"))
    report.compare("entity command, active (1 caller)", "plain ask to one actor (1 caller)")

    progress("activation latency (SQLite load)")
    samples = trio.run(activation_latency, 2_000 if quick else 10_000)
    p50, p99 = percentiles(samples, 50, 99)
    report.add(Row("activation p50 (SQLite row load)", p50 * 1e3, "ms"))
    row = report.add(Row("activation p99 (SQLite row load)", p99 * 1e3, "ms", budget="< 2 ms"))
    row.ok = p99 < 0.002

    n_spread = 50_000 if quick else 200_000
    for keys in (1_000, 100_000):
        progress(f"throughput over {keys:,} keys")
        rate, stats = trio.run(spread, n_spread, keys, 1_000)
        r = report.add(Row(f"commands over {keys:,} keys (max_active 1,000)", rate, "cmd/s"))
        r.extra = {k: stats[k] for k in ("activations", "passivations", "active")}
        print(
            f"  {keys:,} keys: activations {stats['activations']:,}, "
            f"passivations {stats['passivations']:,}, active {stats['active']:,}"
        )

    progress("memory")
    mem = _memory_in_fresh_process(10_000, 20_000 if quick else 100_000, 1_000)
    per = report.add(
        Row("RSS per active entity (10,000 active)", mem["per_entity"], "bytes", budget="< 5 KB")
    )
    per.ok = mem["per_entity"] < 5 * 1024
    start, end = mem["churn_start"] / 2**20, mem["churn_end"] / 2**20
    n_act = int(mem["churn_activations"])
    report.add(Row(f"RSS at start of {n_act:,} activations", start, "MB"))
    flat = report.add(
        Row(f"RSS after {n_act:,} activations (max 1,000)", end, "MB", budget="flat (< +5 MB)")
    )
    flat.ok = end - start < 5
    report.add(Row("tree poll, region only (10,000 entities)", mem["tree_region_ms"], "ms"))
    report.add(Row("tree poll, region + 10,000 entities", mem["tree_full_ms"], "ms"))
    return report
