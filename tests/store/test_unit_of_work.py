"""Units of work on both backends: data and outbox rows commit or roll back together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.store.conftest import SCHEMAS
from triotok._exceptions import InvalidConfig
from triotok.store import ConflictError, Store, StoreError, open_store
from triotok.transport import Envelope, decode, event


@event("store.tested", version=1)
@dataclass(frozen=True)
class StoreTested:
    n: int


class Boom(Exception):
    pass


async def _count(store: Store, table: str) -> int:
    return int(await store.fetchval(f"SELECT count(*) FROM {table}"))


async def test_commit_writes_data_and_outbox_rows_together(store: Store) -> None:
    envelope = Envelope.new(StoreTested(1), tenant_id="acme")
    async with store.transaction() as tx:
        changed = await tx.execute(
            "INSERT INTO tenants (id, name) VALUES ($1, $2)", "acme", "Acme Inc"
        )
        outbox_id = await tx.publish(envelope)
    assert changed == 1
    row = await store.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)
    assert row is not None
    assert row["event_id"] == str(envelope.id)
    assert row["event_type"] == "store.tested"
    assert row["tenant_id"] == "acme"
    assert decode(bytes(row["payload"])) == envelope
    assert await _count(store, "tenants") == 1
    assert store.statistics().transactions_committed >= 1


async def test_rollback_publishes_nothing(store: Store) -> None:
    async def write_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
            await tx.publish(b"\xa0", event_id="e-1", event_type="x.created")
            assert await tx.fetchval("SELECT count(*) FROM outbox") == 1  # visible inside
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    assert await _count(store, "tenants") == 0
    assert await _count(store, "outbox") == 0
    assert store.statistics().transactions_rolled_back == 1


async def test_cancelled_transaction_rolls_back(store: Store) -> None:
    with trio.CancelScope() as scope:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
            scope.cancel()
            await trio.sleep_forever()
    assert await _count(store, "tenants") == 0
    # The store is usable afterwards: the connection left its transaction.
    await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
    assert await _count(store, "tenants") == 1


async def test_unique_violation_is_a_conflict(store: Store) -> None:
    await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
    with pytest.raises(ConflictError):
        await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "again")
    async with store.transaction() as tx:
        await tx.publish(b"x", event_id="dup", event_type="x")
    with pytest.raises(ConflictError):
        async with store.transaction() as tx:
            await tx.publish(b"x", event_id="dup", event_type="x")


async def test_other_database_errors_are_store_errors(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.fetch("SELECT * FROM no_such_table")
    with pytest.raises(StoreError):
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO nowhere VALUES ($1)", 1)


async def test_unit_of_work_is_dead_after_its_block(store: Store) -> None:
    async with store.transaction() as tx:
        pass
    with pytest.raises(StoreError, match="ended"):
        await tx.execute("SELECT 1")


async def test_publish_bytes_needs_id_and_type(store: Store) -> None:
    async with store.transaction() as tx:
        with pytest.raises(InvalidConfig, match="event_id"):
            await tx.publish(b"x", event_type="x")
        with pytest.raises(InvalidConfig, match="event_type"):
            await tx.publish(b"x", event_id="e")
        with pytest.raises(InvalidConfig, match="Envelope or bytes"):
            await tx.publish({"not": "an envelope"})
        with pytest.raises(InvalidConfig, match="disagrees"):
            await tx.publish(Envelope.new(StoreTested(2)), event_type="other.type")


async def test_values_round_trip_the_same_on_both_backends(store: Store) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO tenants (id, name, active, settings, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            "t1",
            "T",
            False,
            '{"theme": "dark"}',
            when,
        )
        row = await tx.fetchrow("SELECT * FROM tenants WHERE id = $1", "t1")
    assert row is not None
    assert row["active"] is False
    assert row["created_at"] == when
    assert isinstance(row["updated_at"], datetime)
    assert row["version"] == 1
    assert "dark" in row["settings"]
    assert await store.fetchrow("SELECT * FROM tenants WHERE id = $1", "nope") is None
    assert await store.fetch("SELECT id FROM tenants WHERE active = $1", False) == [{"id": "t1"}]


async def test_commit_that_published_wakes_listeners(store: Store) -> None:
    async with store.listen(poll_interval=60, fallback_interval=60) as wakeups:

        async def publish_then_fail() -> None:
            async with store.transaction() as tx:
                await tx.publish(b"x", event_id="rolled-back", event_type="x")
                raise Boom

        with pytest.raises(Boom):
            await publish_then_fail()
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
        assert store.statistics().listeners == 1
        async with store.transaction() as tx:
            await tx.publish(b"x", event_id="e1", event_type="x")
        with trio.fail_after(10):
            assert await wakeups.wait() is True
    assert store.statistics().listeners == 0


async def test_wait_times_out_into_a_poll(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # SQLite only: the autojump clock also drives trio-asyncio's timeouts,
    # which would fire instantly against a real network connection.
    async with (
        open_store(f"sqlite:///{tmp_path}/t.db", schemas=SCHEMAS) as store,
        store.listen(poll_interval=5, fallback_interval=1) as wakeups,
    ):
        assert wakeups.listening
        before = trio.current_time()
        assert await wakeups.wait() is False
        assert trio.current_time() - before == pytest.approx(5)
        wakeups.wake_nowait()
        wakeups.wake_nowait()  # coalesced with the pending one
        assert await wakeups.wait() is True
        assert await wakeups.wait() is False
        wakeups.wake_nowait()
        assert wakeups.wait_nowait() is True
        assert wakeups.wait_nowait() is False


async def test_ping_and_statistics(store: Store) -> None:
    await store.ping()
    stats = store.statistics().as_dict()
    assert stats["backend"] == store.backend
    assert stats["transactions_active"] == 0
    assert stats["connections_max"] >= 1
