"""Rebuilds from the write tables: batched, parallel, resumable after SIGKILL, under live writes.

* A rebuild of an emptied (or wrong) index gives back the index the events
  built, and sweeps what the write tables do not have.
* ``triotok index rebuild`` killed with SIGKILL in the middle (a real
  process) resumes from its last checkpoint, and ends with exactly the index
  an uninterrupted rebuild makes.
* Writes made during a rebuild are all in the index afterwards: nothing lost,
  nothing reverted to what the rebuild read.
* The operators' route starts one, shows its progress, and refuses tenants' keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.conftest import Server
from triotok.app import schemas_of
from triotok.modules.commerce import AdjustInventory, CreateProduct, ProductService, UpdateProduct
from triotok.modules.commerce import Who as ProductWho
from triotok.modules.content import Command as NodeCommand
from triotok.modules.content import ContentService, CreateNode, TransitionNode, Translation
from triotok.modules.content import Who as NodeWho
from triotok.modules.search import Projector, Rebuilder, RebuildOptions, SearchService
from triotok.store import Store, open_store

SRC = Path(__file__).resolve().parents[3] / "src"
INDEX_TABLES = (
    "product_index",
    "product_index_attrs",
    "content_docs",
    "content_index",
    "content_index_tags",
)


async def dump(store: Store, *, exact: bool = True) -> dict[str, Any]:
    """Every index row (without store-internal row ids), comparable across runs.

    ``exact=False`` leaves out what events and a rebuild legitimately record
    differently for a product: when its stock last moved (an inventory event
    has its own time) and which of its two versions came from where.
    """
    out: dict[str, Any] = {}
    for table in INDEX_TABLES:
        rows = await store.fetch(f"SELECT * FROM {table}")
        cleaned = []
        for row in rows:
            row = {k: (str(v) if k == "tsv" else v) for k, v in row.items() if k != "doc"}
            if not exact and table == "product_index":
                for column in ("updated_at", "fields_version", "stock_version"):
                    row.pop(column)
            cleaned.append(json.dumps(row, sort_keys=True, default=str))
        out[table] = sorted(cleaned)
    if store.backend == "sqlite":
        for table, index, key in (
            ("product_fts", "product_index", "id"),
            ("content_fts", "content_index", "node_id, i.locale"),
        ):
            rows = await store.fetch(
                f"SELECT i.tenant_id, i.{key}, f.title, f.body FROM {table} f"
                f" JOIN {index} i ON i.doc = f.rowid"
            )
            out[table] = sorted(json.dumps(list(r.values())) for r in rows)
            out[f"{table}_rows"] = await store.fetchval(f"SELECT count(*) FROM {table}")
    return out


async def wipe(store: Store) -> None:
    async with store.transaction() as tx:
        for table in (
            *INDEX_TABLES,
            *(("product_fts", "content_fts") if store.backend == "sqlite" else ()),
        ):
            await tx.execute(f"DELETE FROM {table}")


async def seed_write_tables(store: Store, tenants: int, products: int, nodes: int) -> None:
    """Rows as the commerce and content modules write them (fast: no events)."""
    now = datetime(2024, 5, 1, tzinfo=UTC)
    async with store.transaction() as tx:
        for n in range(products):
            tenant = f"t{n % tenants}"
            await tx.execute(
                "INSERT INTO commerce_products (tenant_id, id, sku, title, description, price,"
                " currency, status, attributes, on_hand, reserved, created_at, updated_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, 'EUR', 'active', $7, $8, 0, $9, $9, 3)",
                tenant,
                str(uuid.uuid4()),
                f"SKU-{n}",
                f"Mug {n} blue",
                "stoneware",
                100 + n,
                json.dumps({"color": ["blue", "red"][n % 2]}),
                n,
                now,
            )
        for n in range(nodes):
            tenant, node_id = f"t{n % tenants}", str(uuid.uuid4())
            await tx.execute(
                "INSERT INTO content_nodes (tenant_id, id, kind, status, parent_id, position,"
                " created_at, updated_at, published_at, version)"
                " VALUES ($1, $2, 'post', 'published', NULL, NULL, $3, $3, $3, 2)",
                tenant,
                node_id,
                now,
            )
            for locale in ("en", "de"):
                await tx.execute(
                    "INSERT INTO content_translations (tenant_id, node_id, locale, title, slug,"
                    " excerpt, body, body_format) VALUES ($1, $2, $3, $4, $5, '', $6, 'markdown')",
                    tenant,
                    node_id,
                    locale,
                    f"Post {n} {locale}",
                    f"p-{n}-{locale}",
                    "**tea**",
                )
            await tx.execute(
                "INSERT INTO content_tags (tenant_id, node_id, tag) VALUES ($1, $2, 'news')",
                tenant,
                node_id,
            )


# ---------------------------------------------------------------- from events, then rebuilt


async def _populate(server: Server) -> str:
    """Products and nodes through their services (events and all); the last write's token."""
    products = server.app.context.get(ProductService)
    content = server.app.context.get(ContentService)
    pwho, nwho = ProductWho("test"), NodeWho("test")
    for n in range(23):
        tenant = ("alpha", "beta")[n % 2]
        product_id = str(uuid.uuid4())
        attributes = {"color": ("blue", "red")[n % 2], "size": n % 3}
        await products.ask(
            tenant,
            product_id,
            CreateProduct(f"S-{n}", f"Mug {n}", 100 * n, "EUR", pwho, attributes=attributes),
        )
        if n % 3 == 0:
            await products.ask(tenant, product_id, UpdateProduct({"title": f"Cup {n}"}, pwho, 1))
        if n % 4 == 0:
            await products.ask(tenant, product_id, AdjustInventory(n, "in", pwho))
    for n in range(11):
        tenant, node_id = ("alpha", "beta")[n % 2], str(uuid.uuid4())
        translations = (Translation("en", f"Post {n}", f"post-{n}", body="# Tea"),)
        await content.ask(tenant, node_id, CreateNode("post", translations, nwho, tags=("news",)))
        if n % 2:
            await content.ask(tenant, node_id, TransitionNode(NodeCommand.PUBLISH, nwho))
        if n % 4 == 0:  # drafts (even n): deleted
            await content.ask(tenant, node_id, TransitionNode(NodeCommand.DELETE, nwho))
    return str(await server.app.context.store.store.fetchval("SELECT max(id) FROM outbox"))


async def _caught_up(server: Server, token: str) -> None:
    service = server.app.context.get(SearchService)
    for tenant in ("alpha", "beta"):
        assert await service.wait_for(tenant, int(token))


async def test_a_rebuild_gives_back_the_index_the_events_built(server: Server) -> None:
    store = server.app.context.store.store
    with trio.fail_after(120):
        await server.tenant("alpha")
        await server.tenant("beta")
        await _caught_up(server, await _populate(server))
        by_events = await dump(store, exact=False)
        assert len(by_events["product_index"]) == 23
        await wipe(store)
        # Rows the write tables do not have: swept by the rebuild.
        stray = Projector(store.backend)
        from tests.modules.search.test_fts import T0
        from triotok.modules.search import NodeDoc, ProductDoc

        async with store.transaction() as tx:
            await stray.apply(
                tx,
                [
                    ProductDoc(
                        "alpha",
                        str(uuid.uuid4()),
                        "GONE",
                        "Gone",
                        "",
                        1,
                        "EUR",
                        "active",
                        {},
                        0,
                        0,
                        T0,
                        T0,
                        9,
                    ),
                    NodeDoc(
                        "alpha",
                        str(uuid.uuid4()),
                        "post",
                        "draft",
                        (),
                        None,
                        None,
                        (),
                        T0,
                        T0,
                        None,
                        4,
                    ),
                ],
            )
        rebuilder = Rebuilder(store, Projector(store.backend))
        progress = await rebuilder.run(RebuildOptions(workers=2, batch_size=4))
        assert (progress.status, progress.rows_done) == ("done", 23 + 11 - 3)
        rebuilt = await dump(store, exact=False)
    tombstones = [json.loads(r) for r in rebuilt["content_docs"] if json.loads(r)["deleted"]]
    assert len(tombstones) == 1  # the stray node; deleted nodes' tombstones went with the wipe
    rebuilt["content_docs"] = [r for r in rebuilt["content_docs"] if not json.loads(r)["deleted"]]
    by_events["content_docs"] = [
        r for r in by_events["content_docs"] if not json.loads(r)["deleted"]
    ]
    for table in rebuilt:
        assert rebuilt[table] == by_events[table], table
    assert rebuilder.batches >= 8  # batched: 23 products and 8 nodes in batches of 4


async def test_writes_during_a_rebuild_are_never_lost_nor_reverted(server: Server) -> None:
    store = server.app.context.store.store
    products = server.app.context.get(ProductService)
    who = ProductWho("test")
    with trio.fail_after(120):
        await server.tenant("alpha")
        ids = [str(uuid.uuid4()) for _ in range(40)]
        for n, product_id in enumerate(ids):
            await products.ask(
                "alpha", product_id, CreateProduct(f"S-{n}", f"Mug {n}", 100, "EUR", who)
            )
        rebuilder = Rebuilder(store, server.app.context.get(SearchService).projector())
        options = RebuildOptions(workers=2, batch_size=3, pause=0.01)
        versions: dict[str, int] = {}

        async def writer() -> None:
            # Edits land before, inside and after the batches that read their rows.
            for rounds in range(3):
                for n, product_id in enumerate(ids):
                    product = await products.ask(
                        "alpha", product_id, UpdateProduct({"title": f"Cup {n} r{rounds}"}, who)
                    )
                    product = await products.ask("alpha", product_id, AdjustInventory(1, "in", who))
                    versions[product_id] = product.version
                    await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            progress = await rebuilder.run(options)
        assert progress.status == "done"
        await _caught_up(server, str(await store.fetchval("SELECT max(id) FROM outbox")))
        listed = (
            await server.app.context.get(SearchService)
            .reader()
            .list_products(store, "alpha", limit=100)
        )
    got = {i["id"]: (i["version"], i["title"], i["on_hand"]) for i in listed.items}
    assert got == {
        product_id: (versions[product_id], f"Cup {n} r2", 3) for n, product_id in enumerate(ids)
    }


# ---------------------------------------------------------------- SIGKILL, with real processes


def _command(url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "triotok.cli", "index", "rebuild", "--store", url, *extra]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
    env["PYTHONPATH"] = str(SRC)
    return env


@pytest.mark.slow
async def test_a_rebuild_killed_with_sigkill_resumes_and_ends_with_the_same_index(
    store_url: str,
) -> None:
    async with open_store(store_url, schemas=schemas_of()) as store:
        with trio.fail_after(240):
            await seed_write_tables(store, tenants=3, products=300, nodes=60)
            total = 360
            process = await trio.lowlevel.open_process(
                _command(store_url, "--batch-size", "10", "--workers", "2", "--pause", "0.05"),
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while True:  # until some batches are committed, then kill it mid-flight
                    done = await store.fetchval("SELECT max(rows_done) FROM search_rebuilds")
                    if done is not None and done >= 60:
                        break
                    assert process.poll() is None, "the rebuild ended before it was killed"
                    await trio.sleep(0.01)
                process.send_signal(signal.SIGKILL)
                assert await process.wait() == -signal.SIGKILL
            finally:
                if process.returncode is None:
                    process.kill()
            row = await store.fetchrow("SELECT * FROM search_rebuilds")
            assert row is not None
            assert row["status"] == "running"
            assert 60 <= int(row["rows_done"]) < total
            checkpointed = int(
                await store.fetchval(
                    "SELECT sum(rows_done) FROM search_rebuild_parts WHERE rebuild_id = $1",
                    row["id"],
                )
            )
            assert checkpointed == int(row["rows_done"])  # counters and checkpoints commit together

            resumed = await trio.run_process(
                _command(store_url, "--workers", "2"),
                env=_env(),
                capture_stdout=True,
                capture_stderr=True,
            )
            output = resumed.stderr.decode()
            assert f"rebuild {row['id']}:" in output
            assert f"resumed at {int(row['rows_done']):,} rows" in output
            assert f"rebuild {row['id']} done: {total:,} rows" in output
            after_kill = await dump(store)
            assert len(after_kill["product_index"]) == 300
            assert len(after_kill["content_index"]) == 120

            await wipe(store)
            again = await trio.run_process(_command(store_url), env=_env(), capture_stderr=True)
            assert again.returncode == 0
            uninterrupted = await dump(store)
    assert after_kill == uninterrupted


async def test_a_second_run_of_a_live_rebuild_is_refused(store_url: str) -> None:
    async with open_store(store_url, schemas=schemas_of()) as store:
        with trio.fail_after(60):
            await seed_write_tables(store, tenants=1, products=5, nodes=0)
            rebuilder = Rebuilder(store, Projector(store.backend))
            rebuild_id = await rebuilder.start(RebuildOptions(types=("product",)))
            # This process owns it (alive): another run of the same scope is refused.
            refused = await trio.run_process(
                _command(store_url, "--type", "product"),
                env=_env(),
                capture_stderr=True,
                check=False,
            )
            assert refused.returncode == 1
            assert f"rebuild {rebuild_id} is running" in refused.stderr.decode()
            done = await rebuilder.run(RebuildOptions(types=("product",)), rebuild_id)
            assert done.rows_done == 5


# ---------------------------------------------------------------- the operators' route and the tree


async def test_operators_start_and_follow_a_rebuild(server: Server) -> None:
    operator = await server.operator()
    tenant_admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        await _caught_up(server, await _populate(server))
        refused = await server.client.post(
            "/api/search/rebuilds", json={}, headers=server.auth(tenant_admin)
        )
        assert refused.status_code == 403
        started = await server.client.post(
            "/api/search/rebuilds",
            json={"tenant": "alpha", "type": "product", "workers": 2, "batch_size": 2},
            headers=server.auth(operator),
        )
        assert started.status_code == 202, started.text
        rebuild = started.json()
        assert (rebuild["tenant_id"], rebuild["types"], rebuild["status"]) == (
            "alpha",
            ["product"],
            "running",
        )
        url = started.headers["Location"]
        while True:
            status = (await server.client.get(url, headers=server.auth(operator))).json()
            if status["status"] == "done":
                break
            await trio.sleep(0.02)
        assert (status["rows_done"], status["rows_total"], status["percent"]) == (12, 12, 100.0)
        listed = (
            await server.client.get("/api/search/rebuilds", headers=server.auth(operator))
        ).json()
        assert listed["items"][0]["id"] == rebuild["id"]
        missing = await server.client.get(
            "/api/search/rebuilds/999999", headers=server.auth(operator)
        )
        assert missing.status_code == 404
        # The tree shows the monitor's components: the rebuild's progress and the lag
        # (refreshed when the rebuild ends, and every second).
        while True:
            tree = await server.client.get(
                "/system/tree",
                params={"prefix": "/app/modules/search/index"},
                headers=server.auth(operator),
            )
            components = tree.json()["components"]
            shown = components["rebuild"]
            if (shown["rebuild_id"], shown["status"]) == (rebuild["id"], "done"):
                break
            await trio.sleep(0.05)
    assert components["rebuild"]["percent"] == 100.0
    assert components["rebuild"]["rows_done"] == 12
    assert components["projection"]["applied"] > 0
    assert components["projection"]["lag_events"] == 0
