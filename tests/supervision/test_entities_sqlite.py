"""Two nodes, one SQLite file: optimistic concurrency on a ``version`` column.

Each "node" is an entities region with its own store connection to the same
database file; both activate the same key and write it.  A write is
``UPDATE ... WHERE version = $expected``; a stale version makes the region
reload the entity and retry the command once, then answer ``EntityConflict``.
Real time (the store runs in worker threads); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest

from triotok import Actor
from triotok.store import Store, open_store
from triotok.supervision import Entities, EntitiesRef, EntityConflict, check_version
from triotok.testing import TestSystem, open_test_system

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS test_counters ("
    " tenant_id TEXT NOT NULL, id TEXT NOT NULL, total INTEGER NOT NULL,"
    " version INTEGER NOT NULL, PRIMARY KEY (tenant_id, id))"
)


class Counter(Actor):
    """An aggregate stored as one row; ``("add", n)`` or ``("set", n, expected_version)``."""

    def __init__(self, key: Hashable, store: Store) -> None:
        assert isinstance(key, tuple)
        self.tenant, self.id = key
        self.store = store

    async def on_start(self) -> None:
        row = await self.store.fetchrow(
            "SELECT total, version FROM test_counters WHERE tenant_id = $1 AND id = $2",
            self.tenant,
            self.id,
        )
        if row is None:
            await self.store.execute(
                "INSERT INTO test_counters (tenant_id, id, total, version) VALUES ($1, $2, 0, 0)"
                " ON CONFLICT DO NOTHING",
                self.tenant,
                self.id,
            )
            self.total, self.version = 0, 0
        else:
            self.total, self.version = row["total"], row["version"]

    async def receive(self, message: Any) -> Any:
        if message[0] == "add":
            total, expected = self.total + message[1], self.version
        else:  # a client's write against the version it read (If-Match)
            total, expected = message[1], message[2]
        async with self.store.transaction() as tx:
            updated = await tx.execute(
                "UPDATE test_counters SET total = $1, version = version + 1"
                " WHERE tenant_id = $2 AND id = $3 AND version = $4",
                total,
                self.tenant,
                self.id,
                expected,
            )
            check_version(updated, expected=expected, key=(self.tenant, self.id))
        self.total, self.version = total, expected + 1
        return self.total, self.version


async def node(system: TestSystem, name: str, store: Store) -> EntitiesRef:
    spec = Entities(name, factory=lambda key: Counter(key, store), intensity=0)
    return await system.spawn_entities(spec)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/entities.db"


async def test_two_nodes_write_the_same_key_with_optimistic_concurrency(db_url: str) -> None:
    key = ("acme", "c1")
    async with open_store(db_url) as store1, open_store(db_url) as store2:
        await store1.execute(SCHEMA)
        async with open_test_system() as system:
            n1 = await node(system, "n1", store1)
            n2 = await node(system, "n2", store2)
            assert await n1.ask(key, ("add", 1)) == (1, 1)
            assert await n2.ask(key, ("add", 10)) == (11, 2)  # n2 loaded n1's write
            # n1's copy says version 1: its write conflicts, it reloads and retries.
            assert await n1.ask(key, ("add", 100)) == (111, 3)
            assert await n2.ask(key, ("add", 1000)) == (1111, 4)
            s1, s2 = n1.statistics(), n2.statistics()
            assert (s1.reloads, s1.conflicts, s1.restarts) == (1, 0, 0)
            assert (s2.reloads, s2.conflicts) == (1, 0)
            # A client writing against a version that is gone: reload, retry, conflict.
            with pytest.raises(EntityConflict) as info:
                await n1.ask(key, ("set", 0, 2))
            assert info.value.key == key
            assert info.value.path == "/test/n1/acme.c1"
            assert await n1.ask(key, ("set", 5, 4)) == (5, 5)
            assert n1.poisoned_keys() == []
        row = await store2.fetchrow(
            "SELECT total, version FROM test_counters WHERE tenant_id = $1 AND id = $2", *key
        )
        assert row is not None
        assert (row["total"], row["version"]) == (5, 5)


async def test_each_key_is_its_own_row(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.execute(SCHEMA)
        async with open_test_system() as system:
            region = await node(system, "n1", store)
            for i in range(20):
                assert await region.ask(("t", f"k{i % 5}"), ("add", 1)) == (i // 5 + 1,) * 2
            assert region.statistics().activations == 5
        assert await store.fetchval("SELECT count(*) FROM test_counters") == 5
