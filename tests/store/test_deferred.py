"""Deferred statements on both backends: one round trip, order kept, failure final.

``round_trips`` counts jobs on the SQLite threads and crossings into asyncio
on PostgreSQL; nothing else uses the store in these tests, so its deltas
are exact.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import trio

from triotok._exceptions import ConflictError
from triotok.store import Store, StoreError, open_store
from triotok.store._deferred import UnitFailed
from triotok.transport import Envelope

from .conftest import SCHEMAS
from .test_unit_of_work import StoreTested

_TENANT = "INSERT INTO tenants (id, name) VALUES ($1, $2)"


async def _ids(store: Store) -> list[str]:
    return [str(r["id"]) for r in await store.fetch("SELECT id FROM tenants ORDER BY id")]


def _trips(store: Store) -> int:
    return store.statistics().round_trips


async def test_a_unit_that_only_defers_is_one_round_trip(store: Store) -> None:
    envelope = Envelope.new(StoreTested(1), tenant_id="t1")
    before = _trips(store)
    async with store.transaction() as tx:
        tx.defer(_TENANT, "t1", "One")
        tx.defer_many(_TENANT, [("t2", "Two"), ("t3", "Three")])
        tx.defer_many(_TENANT, [])  # no rows: no statement
        tx.defer_publish(envelope)
    assert _trips(store) - before == 1
    assert await _ids(store) == ["t1", "t2", "t3"]
    row = await store.fetchrow("SELECT event_id, tenant_id FROM outbox")
    assert row == {"event_id": str(envelope.id), "tenant_id": "t1"}
    assert store.statistics().transactions_committed == 1


async def test_deferred_statements_ride_on_the_next_statement_in_order(store: Store) -> None:
    before = _trips(store)
    async with store.transaction() as tx:
        tx.defer(_TENANT, "t1", "One")
        tx.defer("UPDATE tenants SET name = $1 WHERE id = $2", "Renamed", "t1")
        # The pending statements run first, in the same round trip: the read sees them.
        assert await tx.fetchval("SELECT name FROM tenants WHERE id = $1", "t1") == "Renamed"
        tx.defer(_TENANT, "t2", "Two")
    # BEGIN + two deferred + the read; then the last deferred + COMMIT.
    assert _trips(store) - before == 2
    assert await _ids(store) == ["t1", "t2"]


async def test_an_empty_unit_sends_nothing(store: Store) -> None:
    before = _trips(store)
    async with store.transaction():
        pass
    assert _trips(store) == before
    assert store.statistics().transactions_committed == 1


async def test_a_deferred_failure_is_raised_at_commit_and_rolls_everything_back(
    store: Store,
) -> None:
    await store.execute(_TENANT, "taken", "T")

    async def unit() -> None:
        async with store.transaction() as tx:
            await tx.execute(_TENANT, "first", "F")  # ran for real, then rolled back
            tx.defer(_TENANT, "second", "S")
            tx.defer(_TENANT, "taken", "again")
            tx.defer(_TENANT, "third", "T")

    with pytest.raises(ConflictError) as raised:
        await unit()
    assert raised.value.violates("tenants", "id")
    assert await _ids(store) == ["taken"]
    assert store.statistics().transactions_rolled_back == 1
    # The writer connection left the transaction: the store goes on.
    await store.execute(_TENANT, "after", "A")
    assert await _ids(store) == ["after", "taken"]


async def test_a_swallowed_deferred_failure_still_rolls_back(store: Store) -> None:
    await store.execute(_TENANT, "taken", "T")

    async def unit() -> None:
        async with store.transaction() as tx:
            tx.defer(_TENANT, "t1", "One")
            tx.defer(_TENANT, "taken", "again")
            with pytest.raises(ConflictError):
                await tx.flush()
            with pytest.raises(UnitFailed):
                tx.defer(_TENANT, "t2", "Two")
            with pytest.raises(UnitFailed):
                await tx.execute(_TENANT, "t3", "Three")
        # leaving the block normally does not commit what is left

    with pytest.raises(UnitFailed):
        await unit()
    assert await _ids(store) == ["taken"]


async def test_expect_guards_a_deferred_update(store: Store) -> None:
    await store.execute(_TENANT, "t1", "One")

    class Stale(ConflictError):
        pass

    stale = Stale("t1 changed")

    async def unit() -> None:
        async with store.transaction() as tx:
            tx.defer(
                "UPDATE tenants SET name = $1, version = version + 1"
                " WHERE id = $2 AND version = $3",
                "Two",
                "t1",
                7,  # not the stored version
                expect=1,
                error=stale,
            )
            tx.defer(_TENANT, "never", "N")

    with pytest.raises(Stale) as raised:
        await unit()
    assert raised.value is stale
    assert await _ids(store) == ["t1"]
    async with store.transaction() as tx:
        tx.defer(
            "UPDATE tenants SET name = $1, version = version + 1 WHERE id = $2 AND version = $3",
            "Two",
            "t1",
            1,
            expect=1,
        )
    assert await store.fetchval("SELECT name FROM tenants WHERE id = $1", "t1") == "Two"

    async def delete_nobody() -> None:
        async with store.transaction() as tx:
            tx.defer("DELETE FROM tenants WHERE id = $1", "nobody", expect=1)

    with pytest.raises(ConflictError, match="expected 1 row"):
        await delete_nobody()


async def test_a_unit_is_closed_to_deferring_after_its_block(store: Store) -> None:
    async with store.transaction() as tx:
        tx.defer(_TENANT, "t1", "One")
    with pytest.raises(StoreError, match="ended"):
        tx.defer(_TENANT, "t2", "Two")
    with pytest.raises(StoreError, match="ended"):
        await tx.flush()
    assert await _ids(store) == ["t1"]


async def test_store_execute_is_one_round_trip(store: Store) -> None:
    before = _trips(store)
    assert await store.execute(_TENANT, "t1", "One") == 1
    assert _trips(store) - before == 1


async def test_a_primary_key_violation_names_its_key(store: Store) -> None:
    tenant, node = "acme", str(uuid.uuid4())
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        tx.defer(
            "INSERT INTO content_nodes (tenant_id, id, kind, status, created_at, updated_at,"
            " version) VALUES ($1, $2, 'page', 'draft', $3, $3, 1)",
            tenant,
            node,
            now,
        )
        tx.defer(
            "INSERT INTO content_translations (tenant_id, node_id, locale, title, slug,"
            " excerpt, body, body_format) VALUES ($1, $2, $3, 'T', $4, '', '', 'markdown')",
            tenant,
            node,
            "en",
            "about",
        )
    with pytest.raises(ConflictError) as pk:
        await store.execute(
            "INSERT INTO content_nodes (tenant_id, id, kind, status, created_at, updated_at,"
            " version) VALUES ($1, $2, 'page', 'draft', $3, $3, 1)",
            tenant,
            node,
            now,
        )
    assert (pk.value.table, pk.value.columns) == ("content_nodes", ("tenant_id", "id"))


async def test_the_slug_index_violation_is_told_apart_from_the_primary_key(store: Store) -> None:
    tenant, one, two = "acme", str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    node_sql = (
        "INSERT INTO content_nodes (tenant_id, id, kind, status, created_at, updated_at,"
        " version) VALUES ($1, $2, 'page', 'draft', $3, $3, 1)"
    )
    text_sql = (
        "INSERT INTO content_translations (tenant_id, node_id, locale, title, slug,"
        " excerpt, body, body_format) VALUES ($1, $2, 'en', 'T', $3, '', '', 'markdown')"
    )
    async with store.transaction() as tx:
        tx.defer(node_sql, tenant, one, now)
        tx.defer(text_sql, tenant, one, "about")

    async def unit() -> None:
        async with store.transaction() as tx:
            tx.defer(node_sql, tenant, two, now)
            tx.defer(text_sql, tenant, two, "about")

    with pytest.raises(ConflictError) as raised:
        await unit()
    assert raised.value.violates("content_translations", "tenant_id", "locale", "slug")
    assert not raised.value.violates("content_nodes", "tenant_id", "id")
    assert await store.fetchval("SELECT count(*) FROM content_nodes") == 1


@pytest.mark.postgres
async def test_a_fused_unit_notifies_other_nodes(pg_url: str) -> None:
    async with (
        open_store(pg_url, schemas=SCHEMAS) as writer,
        open_store(pg_url, schemas=SCHEMAS) as listener,
        listener.listen(poll_interval=60, fallback_interval=60) as wakeups,
    ):
        with trio.fail_after(10):
            while not wakeups.listening:
                await wakeups.wait()
        await writer.execute(_TENANT, "taken", "T")

        async def failing() -> None:
            async with writer.transaction() as tx:
                tx.defer_publish(b"x", event_id="rolled-back", event_type="x")
                tx.defer(_TENANT, "taken", "again")

        with pytest.raises(ConflictError):
            await failing()
        before = writer.statistics().round_trips
        async with writer.transaction() as tx:
            tx.defer(_TENANT, "t1", "One")
            tx.defer_publish(b"x", event_id="e1", event_type="x")
        assert writer.statistics().round_trips - before == 1
        with trio.fail_after(10):
            assert await wakeups.wait() is True
        ids = [r["event_id"] for r in await listener.fetch("SELECT event_id FROM outbox")]
        assert ids == ["e1"]
