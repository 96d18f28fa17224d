"""Versioned migrations: fresh databases, idempotent re-opens, newer schemas refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from triotok.store import LATEST_VERSION, MIGRATIONS, SchemaTooNew, open_store
from triotok.store._migrations import pending

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
