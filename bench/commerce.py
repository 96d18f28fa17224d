"""Commerce: products and inventory at the service level, against the bare single-row write.

Per backend (SQLite on a fresh file per section; PostgreSQL on a throwaway
local cluster started with ``PostgresCluster``, ``fsync=off``, so its
absolute figures are optimistic), everything measured in this run, each
section in its own process running the whole application
(``open_application``, a tenant created up front), one caller asking
``ProductService`` directly (no HTTP):

* ``create_product``: ``CreateProduct`` to a new id (activation of its
  entity, which does not load for a create, then the unit of work: product
  row, ``product.created`` event, audit row). Baseline: a one-row ``INSERT``
  transaction into a table of the same shape on the same store. Budget
  (issue 13): p99 < 5 ms.
* ``update_inventory``: ``AdjustInventory(+1)`` round robin over
  ``PRODUCTS`` active products (the conditional stock update, then
  ``inventory.adjusted`` and the audit row). Baseline: a one-row
  ``UPDATE ... SET on_hand = on_hand + 1`` transaction. Budget (issue 13):
  p99 < 4 ms.

Command and baseline run in alternating blocks (``BLOCKS``), so drift
(checkpoints, the relay catching up, the machine's other load) hits both
alike. Rows report p50 with the ratio against the baseline's p50 (> 1 means
better, ``Report.compare``: a latency row at 0.25x takes four times as
long) and p99 against the budget.

Sections are functions listed in ``SECTIONS``, each ``section(report,
backend, counts)``; a new one (orders, sagas) is a function appended there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._harness import Report, Row, percentiles, progress
from bench._httpload import python
from triotok.testing import PostgresCluster

COUNT = 2_000  # samples per command and per baseline, per backend
BLOCKS = 5
PRODUCTS = 100  # update_inventory spreads over this many active products
CREATE_P99_BUDGET_MS = 5.0
ADJUST_P99_BUDGET_MS = 4.0

_BARE_TABLE = """CREATE TABLE IF NOT EXISTS bench_products (
    tenant_id text NOT NULL,
    id text NOT NULL,
    sku text NOT NULL,
    title text NOT NULL,
    price bigint NOT NULL,
    currency text NOT NULL,
    on_hand bigint NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku))"""
_BARE_INSERT = (
    "INSERT INTO bench_products (tenant_id, id, sku, title, price, currency, on_hand,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)"
)
_BARE_UPDATE = "UPDATE bench_products SET on_hand = on_hand + $1 WHERE tenant_id = $2 AND id = $3"


@dataclass(frozen=True)
class Backend:
    """A store to measure on: its name in the rows and a fresh database per call."""

    name: str
    fresh_url: Callable[[], str]


#: A section adds its rows for one backend: ``section(report, backend, count)``.
Section = Callable[[Report, Backend, int], None]


def _settings(store_url: str) -> Any:
    from triotok.config import load_settings

    return load_settings(
        flags={
            "port": 0,
            "store_url": store_url,
            "rate_limit_per_ip": 10**9,
            "rate_limit_per_key": 10**9,
            "log_level": "warning",
        }
    )


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


# ------------------------------------------------------------------ the measuring process


def _service_level(store_url: str, command: str, count: str) -> None:
    """Print the latencies (s) of ``command`` and of its bare baseline as JSON."""
    import trio

    from triotok.app import open_application
    from triotok.modules.commerce import AdjustInventory, CreateProduct, ProductService, Who
    from triotok.modules.tenants import TenantRepository

    n = int(count)
    who = Who("bench")
    samples: dict[str, list[float]] = {"bare": [], "command": []}

    async def run() -> None:
        async with open_application(_settings(store_url)) as app:
            await app.context.get(TenantRepository).create("bench", "Bench", actor="bench")
            products = app.services.context.get(ProductService)
            store = app.context.store.store
            async with store.transaction() as tx:
                await tx.execute(_BARE_TABLE)
            stock = [str(uuid.uuid4()) for _ in range(PRODUCTS)]
            for i, product_id in enumerate(stock):
                await products.ask(
                    "bench", product_id, CreateProduct(f"S-{i}", "P", 100, "EUR", who)
                )
                async with store.transaction() as tx:
                    await tx.execute(
                        _BARE_INSERT, "bench", product_id, f"S-{i}", "P", 100, "EUR", _now()
                    )
            made = 0

            async def create() -> None:
                nonlocal made
                made += 1
                command = CreateProduct(f"SKU-{made}", f"Product {made}", 1250, "EUR", who)
                await products.ask("bench", str(uuid.uuid4()), command)

            async def bare_insert() -> None:
                nonlocal made
                made += 1
                async with store.transaction() as tx:
                    await tx.execute(
                        _BARE_INSERT,
                        "bench",
                        str(uuid.uuid4()),
                        f"B-{made}",
                        "P",
                        1250,
                        "EUR",
                        _now(),
                    )

            async def adjust(i: int) -> None:
                await products.ask("bench", stock[i % PRODUCTS], AdjustInventory(1, "bench", who))

            async def bare_update(i: int) -> None:
                async with store.transaction() as tx:
                    await tx.execute(_BARE_UPDATE, 1, "bench", stock[i % PRODUCTS])

            async def the_command(i: int) -> None:
                await (create() if command == "create_product" else adjust(i))

            async def the_bare(i: int) -> None:
                await (bare_insert() if command == "create_product" else bare_update(i))

            for i in range(min(50, n)):  # warm-up: connections, statement caches
                await the_bare(i)
                await the_command(i)
            per_block = max(1, n // BLOCKS)
            for _ in range(BLOCKS):
                for i in range(per_block):
                    started = time.perf_counter()
                    await the_bare(i)
                    samples["bare"].append(time.perf_counter() - started)
                for i in range(per_block):
                    started = time.perf_counter()
                    await the_command(i)
                    samples["command"].append(time.perf_counter() - started)

    trio.run(run)
    print(json.dumps(samples))


def _measure(report: Report, backend: Backend, command: str, count: int, budget: float) -> None:
    """Run one command against its baseline in a fresh process; add the rows."""
    progress(f"{backend.name}: service {command}, {count} samples and as many bare writes")
    proc = python(
        "import sys, bench.commerce as b; b._service_level(*sys.argv[1:])",
        backend.fresh_url(),
        command,
        str(count),
    )
    out, _ = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend.name} {command}: the run failed (exit {proc.returncode})")
    samples = json.loads(out)
    bare = "1-row insert tx" if command == "create_product" else "1-row update tx"
    base = f"{backend.name}: {bare}"
    p50, p99 = (x * 1000 for x in percentiles(samples["bare"], 50, 99))
    report.add(Row(base, p50, "ms p50", extra={"p99_ms": p99, "n": len(samples["bare"])}))
    report.add(Row("  p99", p99, "ms"))
    p50, p99 = (x * 1000 for x in percentiles(samples["command"], 50, 99))
    row50 = report.add(
        Row(
            f"{backend.name}: service {command} p50",
            p50,
            "ms",
            extra={"n": len(samples["command"])},
        )
    )
    report.compare(row50.name, base, higher_is_better=False)
    row99 = report.add(Row(f"{backend.name}: service {command} p99", p99, "ms"))
    row99.budget, row99.ok = f"< {budget:g} ms", p99 < budget
    progress(f"{backend.name}: service {command} p50 {p50:.2f} ms, p99 {p99:.2f} ms")


# ------------------------------------------------------------------ sections


def service_create_product(report: Report, backend: Backend, count: int) -> None:
    """``CreateProduct`` to a new id vs a one-row INSERT transaction."""
    _measure(report, backend, "create_product", count, CREATE_P99_BUDGET_MS)


def service_update_inventory(report: Report, backend: Backend, count: int) -> None:
    """``AdjustInventory(+1)`` on an active product vs a one-row UPDATE transaction."""
    _measure(report, backend, "update_inventory", count, ADJUST_P99_BUDGET_MS)


#: Run in order for each backend; append new sections here.
SECTIONS: list[Section] = [service_create_product, service_update_inventory]


# ------------------------------------------------------------------ entry point


def main(args: argparse.Namespace) -> Report:
    """Every section on SQLite, then on PostgreSQL; ``args.quick`` shrinks the counts."""
    report = Report("commerce: products and inventory at the service level vs bare writes")
    count = 250 if args.quick else COUNT
    with tempfile.TemporaryDirectory(prefix="triotok-bench-commerce-") as tmp:
        files = iter(range(10**6))
        sqlite = Backend("sqlite", lambda: f"sqlite:///{tmp}/commerce-{next(files)}.db")
        for section in SECTIONS:
            section(report, sqlite, count)
    if PostgresCluster.find_bindir() is None:
        progress("postgres: PostgreSQL binaries not found, PostgreSQL rows skipped")
        report.add(Row("postgres: skipped (no PostgreSQL binaries)", float("nan"), ""))
        return report
    progress("postgres: starting a throwaway cluster")
    with PostgresCluster() as cluster:
        postgres = Backend("postgres", cluster.create_database)
        for section in SECTIONS:
            section(report, postgres, count)
    return report
