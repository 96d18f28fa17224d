"""Versioned migrations: fresh databases, idempotent re-opens, newer schemas refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from triotok.store import (
    LATEST_VERSION,
    MIGRATIONS,
    EventDeadLetters,
    SchemaTooNew,
    open_store,
)
from triotok.store._migrations import CREATE_MIGRATIONS_TABLE, pending

_TABLES = {
    "schema_migrations",
    "outbox",
    "inbox",
    "tenants",
    "api_keys",
    "audit_log",
    "event_dead_letters",
}


def test_migrations_are_numbered_contiguously_with_both_dialects() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == LATEST_VERSION
    for migration in MIGRATIONS:
        assert migration.sqlite
        assert migration.postgresql
        assert len(migration.sqlite) == len(migration.postgresql)


def test_pending_refuses_a_newer_database() -> None:
    assert pending(0, "db") == list(MIGRATIONS)
    assert pending(LATEST_VERSION, "db") == []
    with pytest.raises(SchemaTooNew, match=f"knows up to version {LATEST_VERSION}"):
        pending(LATEST_VERSION + 1, "db")


async def _tables(store_url: str) -> set[str]:
    async with open_store(store_url) as store:
        if store.backend == "sqlite":
            rows = await store.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {r["name"] for r in rows}
        rows = await store.fetch(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        )
        return {r["name"] for r in rows}


async def test_fresh_database_gets_the_whole_schema(store_url: str) -> None:
    assert await _tables(store_url) >= _TABLES
    async with open_store(store_url) as store:
        assert store.schema_version == LATEST_VERSION


async def test_reopening_is_idempotent(store_url: str) -> None:
    for _ in range(3):
        async with open_store(store_url) as store:
            assert store.schema_version == LATEST_VERSION
            versions = await store.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == [m.version for m in MIGRATIONS]


async def test_a_newer_schema_refuses_to_start(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
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
        async with open_store(store_url) as store:
            versions.append(store.schema_version)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(start)
    assert versions == [LATEST_VERSION] * 4
    async with open_store(store_url) as store:
        count = await store.fetchval("SELECT count(*) FROM schema_migrations")
    assert int(count) == len(MIGRATIONS)


async def test_dead_letters_of_version_2_upgrade_in_place(tmp_path: Path) -> None:
    # A SQLite database as version 2 left it, with one outbox dead letter and a
    # purged one above it (AUTOINCREMENT must not hand its id out again).
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.execute(CREATE_MIGRATIONS_TABLE["sqlite"])
    for migration in MIGRATIONS[:2]:
        for statement in migration.sqlite:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, "2024-01-01T00:00:00+00:00"),
        )
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
    async with open_store(f"sqlite:///{path}") as store:
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
