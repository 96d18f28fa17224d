"""PostgreSQL specifics: outages and recovery, NOTIFY across stores, timeouts."""

from __future__ import annotations

import time

import pytest
import trio

from tests.store.conftest import SCHEMAS
from triotok.store import (
    ConflictError,
    StoreError,
    StoreUnavailable,
    open_store,
)
from triotok.testing import PostgresCluster

pytestmark = pytest.mark.postgres


async def test_outage_is_unavailable_and_the_store_recovers(
    pg_cluster: PostgresCluster, pg_url: str
) -> None:
    async with open_store(pg_url, pool_size=3, schemas=SCHEMAS) as store:
        async with store.listen(poll_interval=60, fallback_interval=0.05) as wakeups:
            await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
            with trio.fail_after(10):
                while not wakeups.listening:
                    await wakeups.wait()
            await trio.to_thread.run_sync(pg_cluster.stop)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.fetchval("SELECT count(*) FROM tenants")
                with pytest.raises(StoreUnavailable):
                    async with store.transaction() as tx:
                        await tx.execute("SELECT 1")  # pragma: no cover
                with pytest.raises(StoreUnavailable):
                    await store.ping()
                with pytest.raises(StoreUnavailable):
                    await store.claim_outbox("n")
                # The listener notices and subscribers fall back to polling.
                with trio.fail_after(10):
                    while wakeups.listening:
                        await wakeups.wait()
            finally:
                await trio.to_thread.run_sync(pg_cluster.start)
            # No restart of the store: the pool reconnects by itself.
            with trio.fail_after(10):
                await store.ping()
                assert await store.fetchval("SELECT count(*) FROM tenants") == 1
                async with store.transaction() as tx:
                    await tx.publish(b"x", event_id="after-restart", event_type="x")
                while not wakeups.listening:
                    await wakeups.wait()
        assert [r.event_id for r in await store.claim_outbox("n")] == ["after-restart"]


async def test_opening_a_stopped_cluster_is_unavailable(pg_cluster: PostgresCluster) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/nope?connect_timeout=2"
    with pytest.raises(StoreUnavailable, match="unavailable"):
        async with open_store(url, schemas=SCHEMAS):
            pass  # pragma: no cover


async def test_a_missing_database_is_a_store_error(pg_cluster: PostgresCluster) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        async with open_store(pg_cluster.url("no_such_database"), schemas=SCHEMAS):
            pass  # pragma: no cover


async def test_notify_wakes_listeners_of_another_store(pg_url: str) -> None:
    async with (
        open_store(pg_url, schemas=SCHEMAS) as relay_side,
        open_store(pg_url, schemas=SCHEMAS) as writer_side,
        relay_side.listen(poll_interval=60, fallback_interval=60) as wakeups,
    ):
        with trio.fail_after(10):
            while not wakeups.listening:
                await wakeups.wait()  # the listener wakes us when it connects
            wakeups.wait_nowait()  # drop that wake-up if still pending
            async with writer_side.transaction() as tx:
                await tx.publish(b"x", event_id="cross", event_type="x")
            assert await wakeups.wait() is True


async def test_statement_timeout_is_unavailable_not_a_hang(pg_url: str) -> None:
    async with open_store(pg_url, statement_timeout=0.2, schemas=SCHEMAS) as store:
        with trio.fail_after(10), pytest.raises(StoreUnavailable, match="statement"):
            await store.fetchval("SELECT pg_sleep(5)")
        assert await store.fetchval("SELECT 1") == 1


async def test_pool_statistics(pg_url: str) -> None:
    async with open_store(pg_url, pool_size=4, schemas=SCHEMAS) as store:
        async with store.transaction() as tx:
            # The connection is taken with the unit's first statement, not before.
            assert store.statistics().connections_in_use == 0
            assert await tx.fetchval("SELECT 1") == 1
            stats = store.statistics()
            assert stats.connections_in_use == 1
            assert stats.transactions_active == 1
            assert stats.connections_max == 4
        assert store.statistics().connections_in_use == 0


async def test_a_loop_opened_by_the_caller_is_reused(pg_url: str) -> None:
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop, open_store(pg_url, schemas=SCHEMAS) as store:
        assert store._loop is loop  # type: ignore[attr-defined]  # backend detail under test
        assert await store.fetchval("SELECT 41 + $1::int", 1) == 42


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_commit_after_a_swallowed_error_reports_the_rollback(pg_url: str) -> None:
    async with open_store(pg_url, schemas=SCHEMAS) as store:
        await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")

        async def swallow_conflict() -> None:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t2", "T")
                with pytest.raises(ConflictError):
                    await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")

        with pytest.raises(StoreError, match="aborted"):
            await swallow_conflict()
        assert await store.fetchval("SELECT count(*) FROM tenants") == 1
        # The connection went back to the pool clean.
        async with store.transaction() as tx:
            assert await tx.fetchval("SELECT count(*) FROM tenants") == 1


def test_cleanup_without_waiting_leaves_the_deletion_to_a_detached_rm(
    pg_cluster: PostgresCluster,  # skips (or fails) as every PostgreSQL test without binaries
) -> None:
    cluster = PostgresCluster()  # never started: only its directory
    marker = cluster.base_dir / "many" / "small" / "files"
    marker.mkdir(parents=True)
    (marker / "one").write_bytes(b"x")
    cluster.cleanup(wait=False)
    # Polling the detached rm (another process) for at most 10 s.
    deadline = time.monotonic() + 10
    while cluster.base_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cluster.base_dir.exists()
