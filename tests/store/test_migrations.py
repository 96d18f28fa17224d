"""Versioned migrations per module: fresh databases, idempotent re-opens, newer schemas
refused, independent module versions, and databases from the global-version era
upgraded in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from tests.store.conftest import SCHEMAS
from triotok._exceptions import InvalidConfig
from triotok.store import (
    LATEST_VERSION,
    MIGRATIONS,
    STORE_SCHEMA,
    EventDeadLetters,
    Migration,
    Schema,
    SchemaTooNew,
    open_store,
)
from triotok.store._migrations import LEGACY_SENTINEL_VERSION, pending, plan

_TABLES = {
    "module_migrations",
    "schema_migrations",
    "outbox",
    "inbox",
    "tenants",
    "api_keys",
    "audit_log",
    "event_dead_letters",
}

_NOTES_V1 = Migration(
    1,
    "notes",
    sqlite=("CREATE TABLE notes (id TEXT PRIMARY KEY)",),
    postgresql=("CREATE TABLE notes (id text PRIMARY KEY)",),
)
_NOTES_V2 = Migration(
    2,
    "notes.body",
    sqlite=("ALTER TABLE notes ADD COLUMN body TEXT",),
    postgresql=("ALTER TABLE notes ADD COLUMN body text",),
)


def test_migrations_are_numbered_contiguously_with_both_dialects() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == LATEST_VERSION
    for schema in (STORE_SCHEMA, *SCHEMAS):
        for migration in schema.migrations:
            assert migration.sqlite
            assert len(migration.sqlite) == len(migration.postgresql)


def test_a_schema_refuses_gaps_missing_dialects_and_bad_names() -> None:
    with pytest.raises(InvalidConfig, match="versions must run"):
        Schema("notes", (_NOTES_V2,))
    with pytest.raises(InvalidConfig, match="both dialects"):
        Schema("notes", (Migration(1, "x", sqlite=("SELECT 1",), postgresql=()),))
    with pytest.raises(InvalidConfig, match="module"):
        Schema("Notes!", ())


def test_pending_refuses_a_newer_database() -> None:
    assert pending(0, "db") == list(MIGRATIONS)
    assert pending(LATEST_VERSION, "db") == []
    with pytest.raises(SchemaTooNew, match=f"knows up to version {LATEST_VERSION}"):
        pending(LATEST_VERSION + 1, "db")


def test_plan_adopts_released_steps_of_a_legacy_database_without_running_them() -> None:
    steps = plan({}, 1, (STORE_SCHEMA, *SCHEMAS), "db")
    adopted = {(s.module, s.migration.version) for s in steps if s.adopt}
    run = {(s.module, s.migration.version) for s in steps if not s.adopt}
    assert adopted == {("store", 1), ("tenants", 1), ("access", 1), ("audit", 1)}
    # Released later than global version 1: the store's newer steps, new modules.
    assert run == {("store", 2), ("store", 3)} | {
        (s.module, m.version) for s in SCHEMAS for m in s.migrations if m.legacy_version is None
    }
    assert all(not s.adopt for s in plan({}, LEGACY_SENTINEL_VERSION, (STORE_SCHEMA,), "db"))


async def _tables(store_url: str) -> set[str]:
    async with open_store(store_url, schemas=SCHEMAS) as store:
        if store.backend == "sqlite":
            rows = await store.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {r["name"] for r in rows}
        rows = await store.fetch(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        )
        return {r["name"] for r in rows}


async def test_fresh_database_gets_the_whole_schema(store_url: str) -> None:
    assert await _tables(store_url) >= _TABLES
    async with open_store(store_url, schemas=SCHEMAS) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.schema_versions == {
            "store": LATEST_VERSION,
            **{s.module: s.latest for s in SCHEMAS},
        }


async def test_the_store_alone_creates_only_its_own_tables(store_url: str) -> None:
    async with open_store(store_url) as store:
        assert store.schema_versions == {"store": LATEST_VERSION}
        with pytest.raises(Exception, match="tenants"):
            await store.fetch("SELECT * FROM tenants")


async def test_reopening_is_idempotent(store_url: str) -> None:
    for _ in range(3):
        async with open_store(store_url, schemas=SCHEMAS) as store:
            assert store.schema_version == LATEST_VERSION
            rows = await store.fetch(
                "SELECT module, version FROM module_migrations ORDER BY module, version"
            )
    expected = [("store", m.version) for m in MIGRATIONS]
    expected += [(s.module, m.version) for s in SCHEMAS for m in s.migrations]
    assert sorted((r["module"], r["version"]) for r in rows) == sorted(expected)


async def test_modules_evolve_independently(store_url: str) -> None:
    async with open_store(store_url, schemas=(Schema("notes", (_NOTES_V1,)),)) as store:
        assert store.schema_versions["notes"] == 1
    newer = (*SCHEMAS, Schema("notes", (_NOTES_V1, _NOTES_V2)))
    async with open_store(store_url, schemas=newer) as store:
        assert store.schema_versions["notes"] == 2
        await store.execute("INSERT INTO notes (id, body) VALUES ($1, $2)", "n1", "hello")
    # An older build of the notes module refuses; a build without it leaves it alone.
    with pytest.raises(SchemaTooNew, match="'notes'"):
        async with open_store(store_url, schemas=(Schema("notes", (_NOTES_V1,)),)):
            pass  # pragma: no cover
    async with open_store(store_url, schemas=SCHEMAS) as store:
        assert await store.fetchval("SELECT body FROM notes WHERE id = $1", "n1") == "hello"


async def test_a_newer_schema_refuses_to_start(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.execute(
            "INSERT INTO module_migrations (module, version, name, applied_at)"
            " VALUES ($1, $2, $3, $4)",
            "store",
            LATEST_VERSION + 1,
            "from the future",
            datetime.now(UTC),
        )
    with pytest.raises(SchemaTooNew, match="refusing to start"):
        async with open_store(store_url):
            pass  # pragma: no cover


async def test_concurrent_starts_migrate_once(store_url: str) -> None:
    versions: list[int] = []

    async def start() -> None:
        async with open_store(store_url, schemas=SCHEMAS) as store:
            versions.append(store.schema_version)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(start)
    assert versions == [LATEST_VERSION] * 4
    async with open_store(store_url, schemas=SCHEMAS) as store:
        count = await store.fetchval("SELECT count(*) FROM module_migrations")
    assert int(count) == len(MIGRATIONS) + sum(len(s.migrations) for s in SCHEMAS)


def _legacy_database(path: Path, version: int) -> None:
    """A database as the global-version code (0.1) left it, at ``version``."""
    legacy = [m for s in (STORE_SCHEMA, *SCHEMAS) for m in s.migrations if m.legacy_version]
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"
    )
    for migration in legacy:
        assert migration.legacy_version is not None
        if migration.legacy_version <= version:
            for statement in migration.sqlite:
                conn.execute(statement)
    for v in range(1, version + 1):
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)", (v, f"v{v}", "2026-01-01T00:00:00")
        )
    conn.execute("INSERT INTO tenants (id, name) VALUES ('acme', 'Acme')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("legacy_version", [1, 2])
async def test_a_global_version_database_upgrades_in_place(
    tmp_path: Path, legacy_version: int
) -> None:
    path = tmp_path / "old.db"
    _legacy_database(path, legacy_version)
    async with open_store(f"sqlite:///{path}", schemas=SCHEMAS) as store:
        assert store.schema_version == LATEST_VERSION
        assert await store.fetchval("SELECT name FROM tenants WHERE id = 'acme'") == "Acme"
        assert await store.fetchval("SELECT count(*) FROM event_dead_letters") == 0
    # Code from before per-module bookkeeping now refuses the database.
    conn = sqlite3.connect(path)
    newest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    conn.close()
    assert newest == LEGACY_SENTINEL_VERSION


async def test_dead_letters_of_version_2_upgrade_in_place(tmp_path: Path) -> None:
    # A SQLite database as version 2 left it, with one outbox dead letter and a
    # purged one above it (AUTOINCREMENT must not hand its id out again).
    path = tmp_path / "v2.db"
    _legacy_database(path, 2)
    conn = sqlite3.connect(path)
    insert = (
        "INSERT INTO event_dead_letters (outbox_id, event_id, event_type, tenant_id, payload,"
        " attempts, reason, error, node_id, created_at) VALUES (?, ?, 'x.y', NULL, x'00', 3,"
        " 'max_attempts', 'ValueError: bad', 'n1', '2024-01-01T00:00:00+00:00')"
    )
    conn.execute(insert, (7, "e-1"))
    conn.execute(insert, (8, "e-2"))
    conn.execute("DELETE FROM event_dead_letters WHERE event_id = 'e-2'")
    conn.commit()
    conn.close()
    async with open_store(f"sqlite:///{path}", schemas=SCHEMAS) as store:
        assert store.schema_version == LATEST_VERSION
        dead = EventDeadLetters(store)
        [letter] = await dead.list()
        assert (letter.id, letter.source, letter.outbox_id, letter.event_id) == (
            1,
            "outbox",
            7,
            "e-1",
        )
        assert (letter.error_type, letter.error_message) == ("ValueError", "bad")
        assert letter.envelope is None  # x'00' is no envelope
        async with store.transaction() as tx:
            await tx.publish(b"\x01", event_id="e-3", event_type="x.y", tenant_id=None)
        [row] = await store.claim_outbox("n1")
        assert await dead.add(row, "undecodable", "SchemaError: no")
        assert [d.id for d in await dead.list()] == [1, 3]


async def test_many_processes_opening_a_fresh_file_at_once(tmp_path: Path) -> None:
    """Eight starters on a new SQLite file, ten times: switching it to WAL races, never fails."""
    with trio.fail_after(60):
        for round_ in range(10):
            url = f"sqlite:///{tmp_path}/fresh-{round_}.db"
            versions: list[int] = []

            async def start(url: str = url, versions: list[int] = versions) -> None:
                async with open_store(url, schemas=SCHEMAS) as store:
                    versions.append(store.schema_version)

            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(start)
            assert versions == [LATEST_VERSION] * 8
