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
backend, counts)``; a new one is a function appended there.

Then the order saga end to end over HTTP (SQLite only: ``triotok serve``
on a seeded file, driven by the load client of ``bench/_httpload.py`` in
its own process), with 1 and 2 worker processes:

* ``saga latency``: ``POST /api/orders`` with ``Prefer: wait=10`` from one
  connection, so each answer comes once the order is ``confirmed`` (the
  order's entity, ``order.placed`` through the outbox and the relay,
  commerce's reservation in one unit of work, ``inventory.reserved`` back
  to the order). Baseline: ``POST /api/products`` (one entity command, one
  unit of work) on the same server, alternating.
* ``orders/s``: the same with ``SAGA_CONNECTIONS`` connections for at most
  ``SAGA_ORDERS`` orders; orders confirmed per second of wall time.
  Baseline: products created per second the same way.

After each server stops, every order placed is checked in the file: all
``confirmed`` (stock is ample), none left ``pending``.
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
SAGA_PRODUCTS = 20  # orders spread over this many active, stocked products
SAGA_LATENCY_ORDERS = 300  # sequential orders per latency round
SAGA_ORDERS = 1_500  # at most this many orders per throughput round (a load-client argv)
SAGA_CONNECTIONS = 16
SAGA_SECONDS = 8.0

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


# ------------------------------------------------------------------ the saga over HTTP


def _seed_shop(store_dir: str) -> None:
    """A tenant, an editor key and active, stocked products; print ``key`` and ``products``."""
    import trio

    from triotok.app import open_application
    from triotok.modules.access import ApiKeyRepository, Role
    from triotok.modules.commerce import (
        AdjustInventory,
        CreateProduct,
        ProductService,
        Status,
        UpdateProduct,
        Who,
    )
    from triotok.modules.tenants import TenantRepository

    async def run() -> None:
        async with open_application(_settings(f"sqlite:///{store_dir}/bench.db")) as app:
            await app.context.get(TenantRepository).create("bench", "Bench", actor="bench")
            _, key = await app.context.get(ApiKeyRepository).create(
                "bench", Role.EDITOR, actor="bench"
            )
            products = app.services.context.get(ProductService)
            who = Who("bench")
            ids = []
            for i in range(SAGA_PRODUCTS):
                product_id = str(uuid.uuid4())
                await products.ask(
                    "bench", product_id, CreateProduct(f"M-{i}", "P", 990, "EUR", who)
                )
                activate = UpdateProduct({"status": Status.ACTIVE}, who, expected_version=1)
                await products.ask("bench", product_id, activate)
                await products.ask("bench", product_id, AdjustInventory(10**7, "bench", who))
                ids.append(product_id)
            print(json.dumps({"key": key, "products": ids}), flush=True)

    trio.run(run)


def _order_plans(key: str, products: list[str], count: int) -> tuple[Any, Any]:
    from bench._httpload import Plan

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    order = Plan(
        "POST",
        "/api/orders",
        {**headers, "Prefer": "wait=10"},
        body='{"items": [{"product_id": "{v}", "quantity": 1}]}',
        values=[products[i % len(products)] for i in range(count)],
        expect=201,
    )
    product = Plan(
        "POST",
        "/api/products",
        headers,
        body='{"sku": "{v}", "title": "Bench", "price": 100, "currency": "EUR"}',
        limit=count,
        expect=201,
    )
    return order, product


def _statuses(store_dir: str) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(f"{store_dir}/bench.db") as db:
        rows = db.execute("SELECT status, count(*) FROM orders_orders GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def saga_over_http(report: Report, quick: bool) -> None:
    """Saga latency and orders/s end to end, 1 and 2 workers, each against product creates."""
    from bench._httpload import first_line, load_round, stop
    from bench.http import _serve_triotok

    latency_orders = 60 if quick else SAGA_LATENCY_ORDERS
    orders = 300 if quick else SAGA_ORDERS
    seconds = 2.0 if quick else SAGA_SECONDS
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="triotok-bench-saga-") as tmp:
            progress(f"saga, {workers} worker(s): seeding {SAGA_PRODUCTS} stocked products")
            seeder = python("import sys, bench.commerce as b; b._seed_shop(sys.argv[1])", tmp)
            shop = first_line(seeder)
            seeder.wait(timeout=120)
            proc, port = _serve_triotok(tmp, workers)
            placed = 0
            try:
                order, product = _order_plans(shop["key"], shop["products"], latency_orders)
                load_round(port, order, 1, 60.0)  # warm-up: activations, statement caches
                placed += latency_orders
                lat: dict[str, list[tuple[float, float]]] = {"order": [], "product": []}
                for i in range(3):
                    progress(f"saga, {workers} worker(s): latency round {i + 1}/3")
                    for name, plan in (("product", product), ("order", order)):
                        plan.tag = f"lat{i}"
                        result = load_round(port, plan, 1, 120.0)
                        if result["errors"]:
                            raise RuntimeError(f"{name}: {result['first_error']}")
                        lat[name].append((result["p50"], result["p99"]))
                        placed += result["count"] if name == "order" else 0
                order, product = _order_plans(shop["key"], shop["products"], orders)
                rates: dict[str, float] = {}
                for name, plan in (("product", product), ("order", order)):
                    progress(
                        f"saga, {workers} worker(s): {name}s/s with {SAGA_CONNECTIONS} connections"
                    )
                    plan.tag = "rate"
                    result = load_round(port, plan, SAGA_CONNECTIONS, seconds)
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['first_error']}")
                    rates[name] = result["count"] / result["elapsed"]
                    placed += result["count"] if name == "order" else 0
            finally:
                stop(proc)
            statuses = _statuses(tmp)
        tag = f"{workers} worker{'s' if workers > 1 else ''}"
        # The median round of three (by p50).
        bp50, bp99 = sorted(lat["product"])[1]
        op50, op99 = sorted(lat["order"])[1]
        base = report.add(Row(f"saga {tag}: POST /api/products p50", bp50 * 1000, "ms"))
        report.add(Row(f"saga {tag}: POST /api/products p99", bp99 * 1000, "ms"))
        row = report.add(Row(f"saga {tag}: POST /api/orders -> confirmed p50", op50 * 1000, "ms"))
        report.compare(row.name, base.name, higher_is_better=False)
        report.add(Row(f"saga {tag}: POST /api/orders -> confirmed p99", op99 * 1000, "ms"))
        base = report.add(Row(f"saga {tag}: products created/s", rates["product"], "/s"))
        row = report.add(
            Row(
                f"saga {tag}: orders confirmed/s",
                rates["order"],
                "/s",
                extra={"connections": SAGA_CONNECTIONS, "statuses": statuses},
            )
        )
        report.compare(row.name, base.name)
        confirmed = statuses.get("confirmed", 0)
        check = report.add(Row(f"saga {tag}: orders confirmed / placed", confirmed, f"of {placed}"))
        check.budget, check.ok = "all confirmed", confirmed == placed and len(statuses) == 1
        progress(f"saga, {tag}: {statuses}")


# ------------------------------------------------------------------ entry point


def main(args: argparse.Namespace) -> Report:
    """Every section on SQLite, then on PostgreSQL; ``args.quick`` shrinks the counts."""
    report = Report("commerce: products and inventory at the service level vs bare writes")
    count = 250 if args.quick else COUNT
    saga_over_http(report, args.quick)
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
