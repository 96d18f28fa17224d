"""Content nodes: ``create_node`` and ``publish`` at the service level and through HTTP.

Per backend (SQLite on a fresh file per server; PostgreSQL on a throwaway
local cluster started with ``PostgresCluster``, ``fsync=off``, so its
absolute figures are optimistic), everything measured in this run:

* **service level**: the whole application in one process, one caller
  asking ``ContentService`` directly (no HTTP): ``CreateNode`` to a new id
  (activation of its entity, whose load finds nothing, then the unit of work:
  node, translation, tag, outbox event, audit row) and ``TransitionNode``
  ``publish`` to a node created just before (entity active). p50/p99 per
  command; the baseline is a one-row ``INSERT`` transaction on the same
  store, in alternating blocks. Then creates paced at ``PACED_RATE`` a
  second (back to back, each create also waits behind the projection of
  the one before: the search module indexes every node in the same
  writer). Budget (issue 12): create p99 < 5 ms, shown on both.
* **HTTP**: ``triotok`` (``open_application``, a tenant and an admin key
  created up front) and a bare quart-trio app whose ``POST`` handler decodes
  the same JSON body and does one single-row ``INSERT`` transaction on the
  same kind of store, each in its own process on the same hypercorn settings
  (``triotok.http.hypercorn_config``). Load from a separate process
  (``bench._httpload``: raw-socket HTTP/1.1 keep-alive, ``CONNECTIONS``
  connections, 127.0.0.1 only), each round bounded by ``SECONDS`` and
  ``LIMIT`` requests: ``POST /api/content/nodes`` with unique slugs, then
  ``POST /api/content/nodes/<id>/publish`` on the nodes that round created,
  then the bare insert; rounds alternate and the best round of each is kept.
  req/s, p50/p99, and the ratio triotok/bare.

Ratios follow ``Report.compare``: > 1 means better than the baseline, so a
latency row at 0.25x takes four times as long as its baseline.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench._harness import Report, Row, percentiles, progress
from bench._httpload import HOST, Plan, first_line, load_round, python, stop
from triotok.testing import PostgresCluster

CONNECTIONS = 16
SECONDS = 3.0
LIMIT = 6_000  # requests per round; below the region's max_active, so publish hits active nodes
ROUNDS = 3
SERVICE_COUNT = 2_000  # per command, service level
SERVICE_BLOCKS = 5
CREATE_P99_BUDGET_MS = 5.0
PACED_RATE = 100.0  # creates a second, the paced service-level row
NODES = "/api/content/nodes"

# The bare server's and the service baseline's table: one row per insert,
# its slug unique per tenant like a content translation's.
_TABLE = """CREATE TABLE IF NOT EXISTS bench_nodes (
    tenant_id text NOT NULL,
    id text NOT NULL,
    slug text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, slug))"""
_INSERT = (
    "INSERT INTO bench_nodes (tenant_id, id, slug, title, body, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


def _body(slug: str) -> dict[str, Any]:
    return {
        "kind": "page",
        "translations": {
            "en": {"title": f"Page {slug}", "slug": slug, "body": f"# Page {slug}\n\nText."}
        },
        "tags": ["bench"],
    }


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


async def _insert(store: Any, slug: str) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            _INSERT, "bench", str(uuid.uuid4()), slug, f"Page {slug}", f"# Page {slug}", _now()
        )


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


# ------------------------------------------------------------------ servers (subprocesses)


def _serve_triotok(store_url: str) -> None:
    """Run the application on a free port; print ``{"port", "key"}`` once ready."""
    import trio

    from triotok.app import open_application
    from triotok.modules.access import ApiKeyRepository, Role
    from triotok.modules.tenants import TenantRepository

    async def run() -> None:
        async with open_application(_settings(store_url)) as app:
            context = app.services.context
            await context.get(TenantRepository).create("bench", "Bench", actor="bench")
            _, key = await context.get(ApiKeyRepository).create("bench", Role.ADMIN, actor="bench")
            print(json.dumps({"port": app.port, "key": key}), flush=True)
            await trio.sleep_forever()

    trio.run(run)


def _serve_bare(store_url: str) -> None:
    """A quart-trio app whose POST does one single-row INSERT, on the same hypercorn settings."""
    import trio
    from hypercorn.trio import serve
    from quart import Response, request
    from quart_trio import QuartTrio

    from triotok.http import HttpOptions, bind_socket, hypercorn_config
    from triotok.store import open_store

    app = QuartTrio("bare", static_folder=None)
    store: Any = None

    @app.post(NODES)
    async def create() -> Response:
        data = json.loads(await request.get_data())
        [(_, text)] = data["translations"].items()
        node = {"id": str(uuid.uuid4()), "slug": text["slug"], "created_at": _now()}
        async with store.transaction() as tx:
            await tx.execute(
                _INSERT, "bench", node["id"], text["slug"], text["title"], text["body"], _now()
            )
        return Response(json.dumps(node), status=201, content_type="application/json")

    async def run() -> None:
        nonlocal store
        async with open_store(store_url) as opened:
            store = opened
            async with store.transaction() as tx:
                await tx.execute(_TABLE)
            sock = bind_socket(HOST, 0)
            port = sock.getsockname()[1]
            config = hypercorn_config(HttpOptions(host=HOST, port=port), sock)

            class Started:
                def started(self, value: Any = None) -> None:
                    print(json.dumps({"port": port}), flush=True)

            await serve(app, config, task_status=Started())  # type: ignore[arg-type]

    trio.run(run)


# ------------------------------------------------------------------ service level (subprocess)


def _service_level(store_url: str, count: str) -> None:
    """Print the latencies (s) of inserts, creates and publishes as JSON (module docstring)."""
    import trio

    from triotok.app import open_application
    from triotok.modules.content import (
        Command,
        ContentService,
        CreateNode,
        TransitionNode,
        Translation,
        Who,
    )
    from triotok.modules.tenants import TenantRepository

    n = int(count)
    who = Who("bench")
    samples: dict[str, list[float]] = {"insert": [], "create": [], "publish": [], "paced": []}

    async def run() -> None:
        async with open_application(_settings(store_url)) as app:
            await app.context.get(TenantRepository).create("bench", "Bench", actor="bench")
            content = app.services.context.get(ContentService)
            store = app.context.store.store
            async with store.transaction() as tx:
                await tx.execute(_TABLE)

            async def create(slug: str) -> str:
                node_id = str(uuid.uuid4())
                text = Translation("en", f"Page {slug}", slug, body=f"# Page {slug}")
                await content.ask("bench", node_id, CreateNode("page", (text,), who, tags=("b",)))
                return node_id

            async def publish(node_id: str) -> None:
                await content.ask("bench", node_id, TransitionNode(Command.PUBLISH, who))

            for i in range(min(50, n)):  # warm-up: connections, statement caches
                await _insert(store, f"w-{i}")
                await publish(await create(f"w-{i}"))
            per_block = max(1, n // SERVICE_BLOCKS)
            # Alternating blocks, so drift (checkpoints, caches) hits all three alike.
            for block in range(SERVICE_BLOCKS):
                for i in range(per_block):
                    started = time.perf_counter()
                    await _insert(store, f"i{block}-{i}")
                    samples["insert"].append(time.perf_counter() - started)
                created = []
                for i in range(per_block):
                    started = time.perf_counter()
                    created.append(await create(f"c{block}-{i}"))
                    samples["create"].append(time.perf_counter() - started)
                for node_id in created:
                    started = time.perf_counter()
                    await publish(node_id)
                    samples["publish"].append(time.perf_counter() - started)
            # Creates at a steady PACED_RATE a second, each timed from its
            # start: what a node under that load answers (back to back, above,
            # each create also queues behind the previous one's projection).
            begin = time.perf_counter()
            for i in range(n):
                await trio.sleep(max(0.0, begin + i / PACED_RATE - time.perf_counter()))
                started = time.perf_counter()
                await create(f"p-{i}")
                samples["paced"].append(time.perf_counter() - started)

    trio.run(run)
    print(json.dumps(samples))


def _service_rows(report: Report, backend: str, store_url: str, count: int) -> None:
    progress(f"{backend}: service level, {count} inserts / creates / publishes in blocks")
    proc = python(
        "import sys, bench.content as b; b._service_level(*sys.argv[1:])", store_url, str(count)
    )
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend}: the service-level run failed (exit {proc.returncode})")
    samples = json.loads(out)
    base = f"{backend}: 1-row insert tx"
    p50, p99 = (x * 1000 for x in percentiles(samples["insert"], 50, 99))
    report.add(Row(base, p50, "ms p50", extra={"p99_ms": p99, "n": len(samples["insert"])}))
    for name, label in (("create", "create_node"), ("publish", "publish")):
        p50, p99 = (x * 1000 for x in percentiles(samples[name], 50, 99))
        row50 = report.add(
            Row(f"{backend}: service {label} p50", p50, "ms", extra={"n": len(samples[name])})
        )
        report.compare(row50.name, base, higher_is_better=False)
        row99 = report.add(Row(f"{backend}: service {label} p99", p99, "ms"))
        if name == "create":
            row99.budget = f"< {CREATE_P99_BUDGET_MS:g} ms"
            row99.ok = p99 < CREATE_P99_BUDGET_MS
        progress(f"{backend}: service {label} p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    p50, p99 = (x * 1000 for x in percentiles(samples["paced"], 50, 99))
    label = f"{backend}: service create_node at {PACED_RATE:g}/s"
    report.add(Row(f"{label} p50", p50, "ms", extra={"n": len(samples["paced"])}))
    row99 = report.add(Row(f"{label} p99", p99, "ms"))
    row99.budget, row99.ok = f"< {CREATE_P99_BUDGET_MS:g} ms", p99 < CREATE_P99_BUDGET_MS
    progress(f"{label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


# ------------------------------------------------------------------ HTTP


def _http_rows(
    report: Report,
    backend: str,
    url_for: Callable[[str], str],
    *,
    seconds: float,
    rounds: int,
    limit: int,
) -> None:
    ours = python("import sys, bench.content as b; b._serve_triotok(sys.argv[1])", url_for("ours"))
    bare = None
    try:
        info = first_line(ours)
        bare = python("import sys, bench.content as b; b._serve_bare(sys.argv[1])", url_for("bare"))
        bare_port = first_line(bare)["port"]
        auth = {
            "Authorization": f"Bearer {info['key']}",
            "X-Tenant": "bench",
            "Content-Type": "application/json",
        }
        body = json.dumps(_body("{v}"), separators=(",", ":"))

        def create(tag: str, cap: int) -> Plan:
            return Plan(
                "POST", NODES, auth, body, tag=tag, limit=cap, expect=201, collect_location=True
            )

        def publish(locations: list[str]) -> Plan:
            return Plan("POST", "{v}/publish", auth, values=locations, limit=len(locations))

        def insert(tag: str, cap: int) -> Plan:
            plain = {"Content-Type": "application/json"}
            return Plan("POST", NODES, plain, body, tag=tag, limit=cap, expect=201)

        def run(name: str, port: int, plan: Plan, wait: float) -> dict[str, Any]:
            result = load_round(port, plan, CONNECTIONS, wait)
            if result["errors"]:
                raise RuntimeError(
                    f"{backend} {name}: {result['errors']} unexpected answers, the first:\n"
                    f"{result['first_error']}"
                )
            return {**result, "rate": result["count"] / result["elapsed"]}

        progress(f"{backend}: HTTP warm-up")
        warm = run("create", info["port"], create("w", 500), 0.5)
        run("publish", info["port"], publish(warm["locations"]), 0.5)
        run("bare insert", bare_port, insert("w", 500), 0.5)
        best: dict[str, dict[str, Any]] = {}

        def keep(name: str, result: dict[str, Any]) -> None:
            result.pop("locations", None)
            if name not in best or result["rate"] > best[name]["rate"]:
                best[name] = result

        for i in range(rounds):
            progress(f"{backend}: round {i + 1}/{rounds}: create_node")
            created = run("create", info["port"], create(f"c{i}", limit), seconds)
            locations = created["locations"]
            keep("create_node", created)
            progress(f"{backend}: round {i + 1}/{rounds}: publish ({len(locations)} nodes)")
            keep("publish", run("publish", info["port"], publish(locations), seconds))
            progress(f"{backend}: round {i + 1}/{rounds}: bare insert")
            keep("bare", run("bare insert", bare_port, insert(f"b{i}", limit), seconds))
    finally:
        stop(ours, bare)
    names = {
        "bare": f"{backend}: HTTP bare insert",
        "create_node": f"{backend}: HTTP create_node",
        "publish": f"{backend}: HTTP publish",
    }
    for key, name in names.items():
        r = best[key]
        p50, p99 = r["p50"] * 1000, r["p99"] * 1000
        report.add(
            Row(name, r["rate"], "req/s", extra={"p50_ms": p50, "p99_ms": p99, "n": r["count"]})
        )
        if key != "bare":
            report.compare(name, names["bare"])
        report.add(Row("  p50", p50, "ms"))
        report.add(Row("  p99", p99, "ms"))
        progress(f"{name}: {r['rate']:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")


# ------------------------------------------------------------------ entry point


def main(args: argparse.Namespace) -> Report:
    """Both backends, service level then HTTP; ``args.quick`` shrinks counts and rounds."""
    report = Report("content: create_node and publish, service level and HTTP vs bare insert")
    seconds = 1.0 if args.quick else SECONDS
    rounds = 1 if args.quick else ROUNDS
    count = 250 if args.quick else SERVICE_COUNT
    http = {"seconds": seconds, "rounds": rounds, "limit": 1_000 if args.quick else LIMIT}
    progress(f"{rounds} HTTP round(s) x {seconds:g}s per server, {CONNECTIONS} connections")
    with tempfile.TemporaryDirectory(prefix="triotok-bench-content-") as tmp:
        _service_rows(report, "sqlite", f"sqlite:///{tmp}/service.db", count)
        _http_rows(report, "sqlite", lambda name: f"sqlite:///{tmp}/{name}.db", **http)
    if PostgresCluster.find_bindir() is None:
        progress("postgres: PostgreSQL binaries not found, PostgreSQL rows skipped")
        report.add(Row("postgres: skipped (no PostgreSQL binaries)", float("nan"), ""))
        return report
    progress("postgres: starting a throwaway cluster")
    with PostgresCluster() as cluster:
        _service_rows(report, "postgres", cluster.create_database(), count)
        _http_rows(report, "postgres", lambda _name: cluster.create_database(), **http)
    return report
