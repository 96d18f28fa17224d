"""The store behind its circuit breakers, on a real SQLite file another connection locks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from tests.store.conftest import SCHEMAS
from triotok.resilience import BreakerState
from triotok.store import (
    ConflictError,
    GuardedStore,
    StoreBreakers,
    StoreUnavailable,
    open_store,
)


async def test_writes_trip_their_breaker_reads_go_on_and_a_trial_closes_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "guarded.db"
    breakers = StoreBreakers(wait_in_open=0.2)
    async with open_store(f"sqlite:///{db}?busy_timeout=0.05", schemas=SCHEMAS) as inner:
        store = GuardedStore(inner, breakers)
        await store.execute("INSERT INTO tenants (id, name) VALUES ('t0', 'T')")
        blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        try:
            await trio.to_thread.run_sync(blocker.execute, "BEGIN EXCLUSIVE")
            failures = 0
            with trio.fail_after(10):
                while breakers.writes.state is BreakerState.CLOSED:
                    with pytest.raises(StoreUnavailable):
                        await store.execute("INSERT INTO tenants (id, name) VALUES ('t1', 'T')")
                    failures += 1
            tried = inner.statistics().consecutive_write_failures
            # Open: refused without touching the database, with a retry_after for HTTP.
            with pytest.raises(StoreUnavailable, match=r"store\.writes breaker open") as refused:
                async with store.transaction() as tx:
                    await tx.execute("INSERT INTO tenants (id, name) VALUES ('t2', 'T')")
            assert inner.statistics().consecutive_write_failures == tried
            assert 0 < refused.value.retry_after <= 0.2  # type: ignore[attr-defined]
            # Reads have their own breaker: the file still reads.
            assert await store.fetchval("SELECT count(*) FROM tenants") == 1
            assert breakers.readable
            assert not breakers.writable
        finally:
            if blocker.in_transaction:
                blocker.execute("ROLLBACK")
            blocker.close()
        await trio.sleep(0.25)  # the breaker's wait in OPEN is real time here (SQLite threads)
        assert breakers.writes.state is BreakerState.HALF_OPEN
        await store.execute("INSERT INTO tenants (id, name) VALUES ('t3', 'T')")  # the trial
        assert breakers.writable
    # One success and two failures: the minimum of 3 calls, 67 % failing (>= 50 %).
    assert failures == 2


async def _refused_inside(store: GuardedStore) -> None:
    async with store.transaction() as tx:
        await tx.execute("UPDATE tenants SET name = 'U' WHERE id = 't0'")
        raise KeyError("a domain error inside the unit of work")


async def test_only_an_unavailable_store_counts_as_a_failure(tmp_path: Path) -> None:
    breakers = StoreBreakers()
    async with open_store(f"sqlite:///{tmp_path}/x.db", schemas=SCHEMAS) as inner:
        store = GuardedStore(inner, breakers)
        await store.execute("INSERT INTO tenants (id, name) VALUES ('t0', 'T')")
        for _ in range(10):
            with pytest.raises(ConflictError):
                await store.execute("INSERT INTO tenants (id, name) VALUES ('t0', 'T')")
            with pytest.raises(KeyError):
                await _refused_inside(store)
        assert breakers.writes.statistics().failed_calls == 0
        assert breakers.writable
        assert await store.fetchval("SELECT name FROM tenants WHERE id = 't0'") == "T"
        assert store.backend == "sqlite"
        assert store.inner is inner
