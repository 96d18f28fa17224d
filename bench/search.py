"""Search: the read models at the service level and over HTTP, on SQLite and PostgreSQL.

Per backend, in subprocesses (one application each):

* **service level** on ``TENANTS`` tenants x ``PER_TENANT`` products (seeded
  into the write tables, then indexed by a rebuild):
  - rebuild rate in rows/s with 1 and with 2 workers (batches of 1,000);
  - ``search_products`` p50/p99: ``SearchReader.search`` of a random tenant,
    20 hits, facets and total included (seed target p99 < 2 ms), for broad
    queries (common words: most of a catalogue matches, and is ranked and
    counted) and selective ones (a rarer word: ~0.02-2 % matches); beside
    each, the same requests' full-text match alone, ranked, 21 ids (FTS5
    ``bm25``, ``ts_rank``: no join, filter, facet or row read), timed just
    before: the engine's floor, and the reader's p99 over it;
  - ``get_product_by_id`` p99: ``ProductService.ask(GetProduct())`` on the
    write side, warm entities (seed target p99 < 1 ms);
  - index lag, commit -> searchable, p50/p99 at ``WRITE_RATE`` writes/s:
    each write (a title change through the product's entity) is timed from
    its commit to the moment the index has applied its outbox position.
* **HTTP** (``CONNECTIONS`` keep-alive connections, best of ``ROUNDS``):
  ``GET /api/products?limit=20`` from the read model against a bare
  quart-trio handler returning the same bytes on the same hypercorn
  settings (budget >= 0.85x), and ``GET /api/search?q=...`` req/s and p99.

``--quick`` shrinks the counts (a smoke test; figures not comparable).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from typing import Any

from bench._harness import Report, Row, percentiles, progress
from bench._httpload import HOST, Plan, first_line, load_round, python, stop
from triotok.testing import PostgresCluster

TENANTS = 10
PER_TENANT = 10_000
SEARCHES = 2_000
GETS = 2_000
WRITE_RATE = 200.0
WRITES = 1_000
CONNECTIONS = 16
SECONDS = 3.0
ROUNDS = 3
HTTP_PRODUCTS = 2_000
SEARCH_P99_TARGET_MS = 2.0
GET_P99_TARGET_MS = 1.0
#: Broad queries: each matches a large part of a tenant's catalogue (ten common words).
QUERIES = ("mug", "blue mug", '"blue mug"', "te*", "mug -red", "stoneware glaze", "cup*")
#: Selective ones: every product also has one of ``RARE`` rarer words (w0 ... w4999).
RARE = 5_000
SELECTIVE = ("w{n}", "w{n} mug", '"w{n}"', "w{n}*", "w{n} -red")
_WORDS = ("blue", "red", "green", "mug", "cup", "teapot", "bowl", "stoneware", "glaze", "plate")


def _settings(store_url: str, **extra: Any) -> Any:
    from triotok.config import load_settings

    return load_settings(
        flags={
            "port": 0,
            "store_url": store_url,
            "rate_limit_per_ip": 10**9,
            "rate_limit_per_key": 10**9,
            "log_level": "warning",
            "search_consistency_wait": 30.0,
            **extra,
        }
    )


async def _seed(store: Any, tenants: int, per_tenant: int) -> dict[str, list[str]]:
    """Products straight into the write tables (as commerce writes them); their ids by tenant."""
    from datetime import UTC, datetime

    rng = random.Random(7)
    now = datetime.now(UTC)
    ids: dict[str, list[str]] = {}
    rows: list[Any] = []

    async def flush() -> None:
        if not rows:
            return
        values = ", ".join(
            "(" + ", ".join(f"${i * 11 + j + 1}" for j in range(11)) + ", 'EUR', 'active', $0)"
            for i in range(len(rows) // 11)
        )
        values = values.replace("$0", f"${len(rows) + 1}")
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO commerce_products (tenant_id, id, sku, title, description, price,"
                " attributes, on_hand, reserved, created_at, version, currency, status,"
                f" updated_at) VALUES {values}",
                *rows,
                now,
            )
        rows.clear()

    for t in range(tenants):
        tenant = f"bench-{t}"
        ids[tenant] = []
        for n in range(per_tenant):
            product_id = str(uuid.uuid4())
            ids[tenant].append(product_id)
            title = " ".join(rng.sample(_WORDS, 3)) + f" w{rng.randrange(RARE)}"
            description = " ".join(rng.choices(_WORDS, k=8))
            attributes = json.dumps({"color": rng.choice(("blue", "red", "green")), "size": n % 5})
            rows += [
                tenant,
                product_id,
                f"SKU-{n}",
                title,
                description,
                rng.randrange(100, 20_000),
                attributes,
                10,
                0,
                now,
                1,
            ]
            if len(rows) >= 11 * 500:
                await flush()
    await flush()
    return ids


# ------------------------------------------------------------------ service level (subprocess)


def _ranked_match(reader: Any, request: Any) -> tuple[str, list[Any]]:
    """The engine's floor for ``request``: its full-text match ranked, 21 ids, nothing else.

    The reader's own condition and score (FTS5 ``bm25`` over the tenant's
    token and the words; ``ts_rank`` over the GIN-indexed ``tsvector``),
    with no join, filter, facet or row read: what any search answering
    ranked hits pays on this engine.
    """
    from triotok.modules.search._projection import _Params

    p = _Params()
    condition, score = reader._match(p, "p", request.query, None, request.tenant_id)
    if reader.backend == "sqlite":
        sql = f"SELECT rowid FROM product_fts WHERE {condition} ORDER BY {score} LIMIT 21"
    else:
        tenant = p(request.tenant_id)
        sql = (
            f"SELECT p.id FROM product_index p WHERE p.tenant_id = {tenant} AND {condition}"
            f" ORDER BY {score} DESC LIMIT 21"
        )
    return sql, p.values


def _service_level(store_url: str, tenants: str, per_tenant: str, quick: str) -> None:
    import trio

    from triotok.app import open_application, schemas_of
    from triotok.modules.commerce import GetProduct, ProductService, UpdateProduct, Who
    from triotok.modules.search import (
        Rebuilder,
        RebuildOptions,
        SearchRequest,
        SearchService,
        parse_query,
    )
    from triotok.store import open_store, outbox_head

    small = quick == "1"
    out: dict[str, Any] = {}

    async def run() -> None:
        async with open_store(store_url, schemas=schemas_of()) as store:
            started = time.perf_counter()
            ids = await _seed(store, int(tenants), int(per_tenant))
            out["seed_s"] = time.perf_counter() - started
        async with open_application(_settings(store_url), serve_http=False) as app:
            search = app.context.get(SearchService)
            store = app.context.store.store
            total = int(tenants) * int(per_tenant)
            for workers in (1, 2):
                async with store.transaction() as tx:
                    for table in ("product_index", "product_index_attrs", "product_fts"):
                        if table != "product_fts" or store.backend == "sqlite":
                            await tx.execute(f"DELETE FROM {table}")
                rebuilder = Rebuilder(store, search.projector())
                started = time.perf_counter()
                done = await rebuilder.run(
                    RebuildOptions(types=("product",), workers=workers, batch_size=1000)
                )
                elapsed = time.perf_counter() - started
                assert done.rows_done == total, done
                out[f"rebuild_{workers}"] = total / elapsed
            reader = search.reader()
            rng = random.Random(1)
            tenant_ids = sorted(ids)
            for name, texts in (("search", QUERIES), ("search_selective", SELECTIVE)):
                latencies: list[float] = []
                floor: list[float] = []
                for i in range((200 if small else SEARCHES) + 100):
                    text = rng.choice(texts).format(n=rng.randrange(RARE // 10))
                    request = SearchRequest(
                        rng.choice(tenant_ids), query=parse_query(text), limit=20
                    )
                    sql, args = _ranked_match(reader, request)
                    started = time.perf_counter()
                    await store.fetch(sql, *args)
                    between = time.perf_counter()
                    await reader.search(store, request)
                    if i >= 100:  # after a warm-up
                        latencies.append(time.perf_counter() - between)
                        floor.append(between - started)
                out[name] = latencies
                out[f"{name}_floor"] = floor
            products = app.context.get(ProductService)
            pool = [(t, pid) for t in tenant_ids for pid in ids[t][:100]]
            for tenant, product_id in pool:  # activate them: the write side, warm
                await products.ask(tenant, product_id, GetProduct())
            gets: list[float] = []
            for _ in range(200 if small else GETS):
                tenant, product_id = rng.choice(pool)
                started = time.perf_counter()
                await products.ask(tenant, product_id, GetProduct())
                gets.append(time.perf_counter() - started)
            out["get"] = gets
            committed: dict[str, float] = {}
            writes = 200 if small else WRITES
            # Commit -> searchable: the time the projection's transaction for the
            # write's event committed, minus the time the write returned.
            applied_at: dict[str, float] = {}
            handle = search.handle
            all_applied = trio.Event()

            async def timed(envelope: Any) -> None:
                await handle(envelope)
                applied_at.setdefault(str(envelope.id), time.perf_counter())
                if committed and len(applied_at.keys() & committed.keys()) == writes:
                    all_applied.set()

            search.handle = timed  # type: ignore[method-assign]  # the bench's probe
            who = Who("bench")
            begin = time.perf_counter()
            for i in range(writes):
                await trio.sleep(max(0.0, begin + i / WRITE_RATE - time.perf_counter()))
                tenant, product_id = rng.choice(pool)
                await products.ask(tenant, product_id, UpdateProduct({"title": f"Mug {i}"}, who))
                done = time.perf_counter()
                event_id = await store.fetchval(
                    "SELECT event_id FROM outbox WHERE id = $1", await outbox_head(store)
                )
                committed[str(event_id)] = done
            out["write_rate"] = writes / (time.perf_counter() - begin)
            with trio.fail_after(120):
                if len(applied_at.keys() & committed.keys()) < writes:
                    await all_applied.wait()
            lags = [max(0.0, applied_at[e] - t) for e, t in committed.items()]
            out["lag"] = lags

    trio.run(run)
    print(json.dumps(out))


def _service_rows(report: Report, backend: str, store_url: str, quick: bool) -> None:
    tenants, per_tenant = (TENANTS, 1_000) if quick else (TENANTS, PER_TENANT)
    progress(f"{backend}: service level on {tenants} tenants x {per_tenant:,} products")
    proc = python(
        "import sys, bench.search as b; b._service_level(*sys.argv[1:])",
        store_url,
        str(tenants),
        str(per_tenant),
        "1" if quick else "0",
    )
    out, _ = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend}: the service-level run failed (exit {proc.returncode})")
    data = json.loads(out)
    rows = tenants * per_tenant
    for workers in (1, 2):
        report.add(
            Row(
                f"{backend}: rebuild {rows:,} products, {workers} worker(s)",
                data[f"rebuild_{workers}"],
                "rows/s",
            )
        )
    report.compare(
        f"{backend}: rebuild {rows:,} products, 2 worker(s)",
        f"{backend}: rebuild {rows:,} products, 1 worker(s)",
    )
    for key, label, target in (
        ("search", "search_products (broad)", SEARCH_P99_TARGET_MS),
        ("search_selective", "search_products (selective)", SEARCH_P99_TARGET_MS),
        ("get", "get_product_by_id", GET_P99_TARGET_MS),
    ):
        p50, p99 = (x * 1000 for x in percentiles(data[key], 50, 99))
        report.add(Row(f"{backend}: {label} p50", p50, "ms", extra={"n": len(data[key])}))
        row = report.add(Row(f"{backend}: {label} p99", p99, "ms"))
        row.budget, row.ok = f"< {target:g} ms (seed target)", p99 < target
        progress(f"{backend}: {label} p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        if f"{key}_floor" in data:  # the engine's ranked match alone, same requests
            f50, f99 = (x * 1000 for x in percentiles(data[f"{key}_floor"], 50, 99))
            floor = f"{backend}: {label}, the engine's ranked match alone"
            report.add(Row(f"{floor} p50", f50, "ms"))
            report.add(Row(f"{floor} p99", f99, "ms"))
            report.add(Row(f"{backend}: {label} p99 / the engine's p99", p99 / f99, "x"))
            progress(f"{floor}: p50 {f50:.3f} ms, p99 {f99:.3f} ms")
    p50, p99 = (x * 1000 for x in percentiles(data["lag"], 50, 99))
    rate = data["write_rate"]
    report.add(
        Row(
            f"{backend}: index lag p50 at {rate:,.0f} writes/s",
            p50,
            "ms",
            extra={"n": len(data["lag"])},
        )
    )
    report.add(Row(f"{backend}: index lag p99 at {rate:,.0f} writes/s", p99, "ms"))
    progress(f"{backend}: index lag p50 {p50:.2f} ms, p99 {p99:.2f} ms at {rate:,.0f} writes/s")


# ------------------------------------------------------------------ HTTP (subprocesses)


def _serve_triotok(store_url: str, count: str) -> None:
    """The application with ``count`` indexed products; prints port, key and the list's body."""
    import trio

    from triotok.app import open_application
    from triotok.modules.access import ApiKeyRepository, Role
    from triotok.modules.search import Rebuilder, RebuildOptions, SearchService
    from triotok.modules.tenants import TenantRepository

    async def run() -> None:
        async with open_application(_settings(store_url)) as app:
            context = app.services.context
            await context.get(TenantRepository).create("bench-0", "Bench", actor="bench")
            _, key = await context.get(ApiKeyRepository).create(
                "bench-0", Role.VIEWER, actor="bench"
            )
            store = context.store.store
            await _seed(store, 1, int(count))
            await Rebuilder(store, context.get(SearchService).projector()).run(
                RebuildOptions(types=("product",), batch_size=1000)
            )
            print(json.dumps({"port": app.port, "key": key}), flush=True)
            await trio.sleep_forever()

    trio.run(run)


def _serve_bare(body_file: str) -> None:
    """A quart-trio app answering ``GET /api/products`` with fixed bytes (same hypercorn)."""
    import trio
    from hypercorn.trio import serve
    from quart import Response
    from quart_trio import QuartTrio

    from triotok.http import HttpOptions, bind_socket, hypercorn_config

    app = QuartTrio("bare", static_folder=None)
    with open(body_file, "rb") as f:
        payload = f.read()

    @app.get("/api/products")
    async def products() -> Response:
        return Response(payload, content_type="application/json")

    async def run() -> None:
        sock = bind_socket(HOST, 0)
        port = sock.getsockname()[1]
        config = hypercorn_config(HttpOptions(host=HOST, port=port), sock)

        class Started:
            def started(self, value: Any = None) -> None:
                print(json.dumps({"port": port}), flush=True)

        await serve(app, config, task_status=Started())  # type: ignore[arg-type]

    trio.run(run)


def _fetch(port: int, path: str, headers: dict[str, str]) -> bytes:
    import http.client

    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200, response.status
        return response.read()
    finally:
        connection.close()


def _http_rows(
    report: Report, backend: str, store_url: str, tmp: str, *, seconds: float, rounds: int
) -> None:
    ours = python(
        "import sys, bench.search as b; b._serve_triotok(*sys.argv[1:])",
        store_url,
        str(HTTP_PRODUCTS),
    )
    bare = None
    try:
        info = first_line(ours)
        auth = {"Authorization": f"Bearer {info['key']}"}
        body_file = f"{tmp}/{backend}-products.json"
        with open(body_file, "wb") as f:
            f.write(_fetch(info["port"], "/api/products?limit=20", auth))
        bare = python("import sys, bench.search as b; b._serve_bare(sys.argv[1])", body_file)
        bare_port = first_line(bare)["port"]
        plans = {
            "list": (info["port"], Plan("GET", "/api/products?limit=20", auth)),
            "bare": (bare_port, Plan("GET", "/api/products?limit=20", {})),
            "search": (info["port"], Plan("GET", "/api/search?q=blue+mug&limit=20", auth)),
        }
        for port, plan in plans.values():
            load_round(port, plan, CONNECTIONS, 0.5)
        best: dict[str, dict[str, Any]] = {}
        for i in range(rounds):
            for name, (port, plan) in plans.items():
                progress(f"{backend}: HTTP round {i + 1}/{rounds}: {name}")
                result = load_round(port, plan, CONNECTIONS, seconds)
                if result["errors"]:
                    raise RuntimeError(f"{backend} {name}: {result['first_error']}")
                rate = result["count"] / result["elapsed"]
                if name not in best or rate > best[name]["rate"]:
                    best[name] = {**result, "rate": rate}
    finally:
        stop(ours, bare)
    names = {
        "bare": f"{backend}: HTTP bare, same bytes",
        "list": f"{backend}: HTTP GET /api/products?limit=20",
        "search": f"{backend}: HTTP GET /api/search?q=blue+mug",
    }
    for key, name in names.items():
        r = best[key]
        report.add(
            Row(
                name,
                r["rate"],
                "req/s",
                extra={"p50_ms": r["p50"] * 1000, "p99_ms": r["p99"] * 1000},
            )
        )
        report.add(Row("  p99", r["p99"] * 1000, "ms"))
        progress(f"{name}: {r['rate']:,.0f} req/s, p99 {r['p99'] * 1000:.2f} ms")
    ratio = report.compare(names["list"], names["bare"])
    row = report.get(names["list"])
    row.budget, row.ok = ">= 0.85x bare", ratio >= 0.85


# ------------------------------------------------------------------ entry point


def main(args: argparse.Namespace) -> Report:
    report = Report("search: read models, full text, rebuilds, lag; service level and HTTP")
    seconds = 1.0 if args.quick else SECONDS
    rounds = 1 if args.quick else ROUNDS
    with tempfile.TemporaryDirectory(prefix="triotok-bench-search-") as tmp:
        _service_rows(report, "sqlite", f"sqlite:///{tmp}/service.db", args.quick)
        _http_rows(
            report, "sqlite", f"sqlite:///{tmp}/http.db", tmp, seconds=seconds, rounds=rounds
        )
        if PostgresCluster.find_bindir() is None:
            progress("postgres: PostgreSQL binaries not found, PostgreSQL rows skipped")
            report.add(Row("postgres: skipped (no PostgreSQL binaries)", float("nan"), ""))
            return report
        progress("postgres: starting a throwaway cluster")
        with PostgresCluster() as cluster:
            _service_rows(report, "postgres", cluster.create_database(), args.quick)
            _http_rows(
                report, "postgres", cluster.create_database(), tmp, seconds=seconds, rounds=rounds
            )
    return report
