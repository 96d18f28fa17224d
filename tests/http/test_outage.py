"""Fault tests: the store goes away under a mixed read/write load, and comes back.

PostgreSQL: the real cluster is stopped (``pg_ctl stop -m fast``) while four
clients read products and adjust their stock over real HTTP. SQLite: another
connection takes the file's write lock (writes fail, reads still work).
Either way the node must go ``read_only`` by itself, keep answering reads
(from the stale copies while the database cannot be read), refuse writes
with 503 (never a 500), return to ``full`` by itself once the store is back,
and have lost no acknowledged write.

Latencies are recorded, not asserted (no timed assertions in tests):
``python -m bench degrade`` measures the refused writes' p99 against the
100 ms budget. Waiting for the node to change mode polls its monitor
(real I/O), bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from tests.http.conftest import Server, ServerFactory
from triotok.testing import PostgresCluster

pytestmark = pytest.mark.slow

CLIENTS = 4
PRODUCTS = 8
#: Requests per client and phase at most (the phases also end by time).
PHASE_REQUESTS = 400


@dataclass
class Load:
    """What the clients saw, by phase."""

    phase: str = "before"
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    stale_reads: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)  # product -> units acknowledged
    ambiguous: Counter[str] = field(default_factory=Counter)  # 503 store_unavailable writes
    refused_ms: list[float] = field(default_factory=list)
    missing_retry_after: int = 0

    def count(self, kind: str, phase: str, status: int) -> int:
        return self.statuses[kind, phase, status]


async def client(
    server: Server, key: dict[str, str], urls: list[str], load: Load, seed: int
) -> None:
    rng = random.Random(seed)
    sent = Counter[str]()
    while load.phase != "done":
        if sent[load.phase] >= PHASE_REQUESTS:  # bounded: idle until the phase ends
            await trio.sleep(0.05)
            continue
        began = load.phase
        sent[began] += 1
        url = rng.choice(urls)
        started = time.perf_counter()
        stale = False
        if rng.random() < 0.5:
            response = await server.client.get(url, headers=key)
            kind = "read"
            stale = response.status_code == 200 and "Cache-Status" in response.headers
        else:
            response = await server.client.post(
                f"{url}/inventory", json={"delta": 1, "reason": "load"}, headers=key
            )
            kind = "write"
            if response.status_code == 200:
                load.acked[url] += 1
        elapsed = (time.perf_counter() - started) * 1000
        # A request in flight while the phase changed belongs to neither phase.
        phase = began if load.phase == began else "transition"
        load.statuses[kind, phase, response.status_code] += 1
        if kind == "read" and stale:
            load.stale_reads[phase] += 1
        if response.status_code == 503:
            code = response.json()["code"]
            load.codes[kind, code] += 1
            if kind == "write":
                load.refused_ms.append(elapsed)
                if code == "store_unavailable":
                    load.ambiguous[url] += 1  # may have committed before the reply was lost
            if "Retry-After" not in response.headers:
                load.missing_retry_after += 1
        await trio.lowlevel.checkpoint()  # one client must not starve the others between requests


@asynccontextmanager
async def running_load(server: Server) -> AsyncIterator[tuple[Load, list[str], dict[str, str]]]:
    key = server.auth(await server.key("acme"))
    urls = []
    for n in range(PRODUCTS):
        created = await server.client.post(
            "/api/products",
            json={"sku": f"SKU-{n}", "title": f"Product {n}", "price": 100, "currency": "EUR"},
            headers=key,
        )
        assert created.status_code == 201, created.text
        url = created.headers["Location"]
        assert (await server.client.get(url, headers=key)).status_code == 200  # a copy to serve
        urls.append(url)
    load = Load()
    async with trio.open_nursery() as nursery:
        for n in range(CLIENTS):
            nursery.start_soon(client, server, key, urls, load, n)
        yield load, urls, key
        load.phase = "done"  # the clients finish their request in flight and stop


async def run_outage(
    server: Server,
    break_store: Callable[[], Awaitable[None]],
    mend_store: Callable[[], Awaitable[None]],
) -> tuple[Load, dict[str, int]]:
    """before -> (store breaks) -> outage -> (store mended) -> after; the final stock."""
    async with running_load(server) as (load, urls, key):
        await trio.sleep(1.0)  # phase "before": a second of normal traffic
        load.phase = "failing"
        await break_store()
        try:
            await server.wait_mode("read_only")
            load.phase = "outage"
            await trio.sleep(2.0)
        finally:
            load.phase = "mending"
            await mend_store()
        await server.wait_mode("full")
        load.phase = "after"
        await trio.sleep(1.0)
    stock = {}
    for url in urls:
        product = (await server.client.get(url, headers=key)).json()
        stock[url] = product["on_hand"]
    return load, stock


def check(load: Load, stock: dict[str, int], *, stale: bool) -> None:
    print(
        f"statuses {dict(load.statuses)}\ncodes {dict(load.codes)}\nstale {dict(load.stale_reads)}"
        f"\nrefused writes: {len(load.refused_ms)}, p99"
        f" {sorted(load.refused_ms)[int(len(load.refused_ms) * 0.99) - 1]:.1f} ms"
        if load.refused_ms
        else ""
    )
    # Nothing but success and 503: never a 500, never a timeout.
    assert {status for _, _, status in load.statuses} <= {200, 503}
    assert load.missing_retry_after == 0
    # Normal traffic before and after.
    for phase in ("before", "after"):
        assert load.count("read", phase, 200) > 0
        assert load.count("write", phase, 200) > 0
        assert load.count("read", phase, 503) == load.count("write", phase, 503) == 0
    # While read-only: every read answered, every write refused by the gate.
    assert load.count("read", "outage", 200) > 0
    assert load.count("read", "outage", 503) == 0
    assert load.count("write", "outage", 503) > 0
    assert load.count("write", "outage", 200) == 0
    assert load.codes["write", "read_only"] > 0
    if stale:
        assert load.stale_reads["outage"] == load.count("read", "outage", 200)
    assert load.stale_reads["after"] == 0
    # Every acknowledged write is there (a 503 from the store itself may have
    # committed before its reply was lost: at most those come on top).
    for url, units in stock.items():
        assert load.acked[url] <= units <= load.acked[url] + load.ambiguous[url], url


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """Each test names its store: one run each, not one per backend."""
    return f"sqlite:///{tmp_path}/triotok.db"


@pytest.mark.postgres
async def test_postgresql_stopped_under_load(
    make_server: ServerFactory, pg_cluster: PostgresCluster, pg_url: str
) -> None:
    async def stop() -> None:
        await trio.to_thread.run_sync(pg_cluster.stop)

    async def start() -> None:
        if not pg_cluster.running:
            await trio.to_thread.run_sync(pg_cluster.start)

    with trio.fail_after(90):
        async with make_server(store_url=pg_url) as server:
            try:
                load, stock = await run_outage(server, stop, start)
            finally:
                await start()
    check(load, stock, stale=True)


async def test_sqlite_file_locked_by_another_process_under_load(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    db = tmp_path / "locked.db"
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    async def lock() -> None:
        # Another process's write lock: every write of ours fails, reads go on (WAL).
        await trio.to_thread.run_sync(blocker.execute, "BEGIN EXCLUSIVE")

    async def unlock() -> None:
        if blocker.in_transaction:
            await trio.to_thread.run_sync(blocker.execute, "ROLLBACK")

    try:
        with trio.fail_after(90):
            async with make_server(store_url=f"sqlite:///{db}?busy_timeout=0.5") as server:
                load, stock = await run_outage(server, lock, unlock)
    finally:
        blocker.close()
    # The file still reads: reads are answered fresh, not from the stale copies.
    check(load, stock, stale=False)
    assert load.stale_reads["outage"] == 0
