"""SQLite specifics: file handling, pragmas, the single writer, a reader beside it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.store.conftest import SCHEMAS
from triotok.store import DEFAULT_STORE_URL, StoreUnavailable, open_store
from triotok.store._checkpoint import Checkpointer
from triotok.store._sqlite import SqliteStore


async def test_default_url_creates_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store(schemas=SCHEMAS) as store:
        assert store.url == DEFAULT_STORE_URL
        await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
    assert (tmp_path / "triotok-data" / "triotok.db").is_file()


async def test_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///nested/dir/app.db", schemas=SCHEMAS):
        pass
    assert (tmp_path / "nested" / "dir" / "app.db").is_file()


async def test_pragmas(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/p.db?busy_timeout=2", schemas=SCHEMAS) as store:
        assert await store.fetchval("PRAGMA journal_mode") == "wal"
        assert await store.fetchval("PRAGMA foreign_keys") == 1
        assert await store.fetchval("PRAGMA synchronous") == 1  # NORMAL
        assert await store.fetchval("PRAGMA busy_timeout") == 2000


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/fk.db", schemas=SCHEMAS) as store:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            await store.execute(
                "INSERT INTO api_keys (id, tenant_id, key_hash, role) VALUES ($1, $2, $3, $4)",
                "k1",
                "no-such-tenant",
                "h",
                "admin",
            )


async def test_unwritable_location_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        async with open_store(f"sqlite:///{blocker}/sub/x.db", schemas=SCHEMAS):
            pass  # pragma: no cover


async def test_transactions_do_not_interleave_and_run_on_one_thread(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/w.db", schemas=SCHEMAS) as store:
        assert isinstance(store, SqliteStore)
        threads: set[int] = set()
        a_inside, a_may_finish = trio.Event(), trio.Event()
        order: list[str] = []

        async def a() -> None:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "a", "A")
                threads.add(await store._writer.run(lambda _c: threading.get_ident()))
                a_inside.set()
                await a_may_finish.wait()
                order.append("a commits")

        async def b() -> None:
            async with store.transaction() as tx:
                order.append("b begins")
                assert await tx.fetchval("SELECT count(*) FROM tenants") == 1
                threads.add(await store._writer.run(lambda _c: threading.get_ident()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(a)
            await a_inside.wait()
            nursery.start_soon(b)
            await trio.testing.wait_all_tasks_blocked()
            stats = store.statistics()
            assert (stats.transactions_active, stats.tasks_waiting) == (1, 1)
            # The reader sees the last committed state while the writer is busy.
            assert await store.fetchval("SELECT count(*) FROM tenants") == 0
            a_may_finish.set()
        assert order == ["a commits", "b begins"]
        assert len(threads) == 1
        assert threading.get_ident() not in threads


async def test_two_stores_on_one_file_share_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    async with open_store(url, schemas=SCHEMAS) as one, open_store(url, schemas=SCHEMAS) as two:
        await one.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "t1", "T")
        assert await two.fetchval("SELECT name FROM tenants WHERE id = $1", "t1") == "T"
        async with two.transaction() as tx:
            await tx.publish(b"x", event_id="e1", event_type="x")
        assert [r.event_id for r in await one.claim_outbox("n")] == ["e1"]


async def test_the_wal_is_checkpointed_by_a_thread_of_its_own_not_by_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    async with open_store(f"sqlite:///{path}?checkpoint_every=20", schemas=SCHEMAS) as store:
        assert isinstance(store, SqliteStore)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer.restart_frames = 200
        async with store.transaction() as tx:
            # The writer never checkpoints: no commit pays for copying the log back.
            assert await tx.fetchval("PRAGMA wal_autocheckpoint") == 0
        for i in range(1000):
            await store.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", f"t{i}", "T")
        # Back-to-back commits keep a passive checkpoint from ever catching up;
        # past restart_frames a RESTART one lets the log start afresh. Each
        # commit appends a 4 KiB page at least: unchecked, the log would pass 4 MB.
        restarted = await trio.to_thread.run_sync(
            checkpointer.wait_until, lambda c: c.restarts >= 1, 30.0
        )
        assert restarted, (checkpointer.checkpoints, checkpointer.restarts)
        assert path.with_name("wal.db-wal").stat().st_size < 2_000_000
        assert await store.fetchval("SELECT count(*) FROM tenants") == 1000


async def test_checkpoint_every_0_leaves_checkpoints_to_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/own.db?checkpoint_every=0"
    async with open_store(url, schemas=SCHEMAS) as store:
        assert isinstance(store, SqliteStore)
        assert store._checkpointer is None
        async with store.transaction() as tx:
            assert await tx.fetchval("PRAGMA wal_autocheckpoint") == 1000


async def test_a_store_gone_idle_is_checkpointed_whatever_its_count_of_writes(
    tmp_path: Path,
) -> None:
    # A few big write jobs, far below checkpoint_every, leave a long log that
    # every reader would search until a checkpoint copies it back.
    path = tmp_path / "idle.db"
    url = f"sqlite:///{path}?checkpoint_every=1000000"
    async with open_store(url, schemas=SCHEMAS) as store:
        assert isinstance(store, SqliteStore)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer.idle = 0.05
        # Idle wake-ups with nothing written since the last checkpoint do nothing.
        assert await trio.to_thread.run_sync(
            checkpointer.wait_until, lambda c: c.idle_wakeups >= 1, 30.0
        )
        quiet = checkpointer.checkpoints
        assert await trio.to_thread.run_sync(
            checkpointer.wait_until, lambda c: c.idle_wakeups >= 3, 30.0
        )
        assert checkpointer.checkpoints == quiet
        async with store.transaction() as tx:
            rows = [(f"t{i}", "x" * 2_000) for i in range(2_000)]
            tx.defer_many("INSERT INTO tenants (id, name) VALUES ($1, $2)", rows)

        def copied_back(c: Checkpointer) -> bool:
            return c.last is not None and c.last[1] > 1_000 and c.last[1] == c.last[2]

        # The whole long log copied back, by checkpoints nobody asked for.
        assert await trio.to_thread.run_sync(checkpointer.wait_until, copied_back, 30.0)
        assert checkpointer.checkpoints == checkpointer.idle_checkpoints >= 1
        async with store.transaction() as tx:
            # The next write starts the log afresh, cut back to this size.
            assert await tx.fetchval("PRAGMA journal_size_limit") == 64 * 1024 * 1024
        assert await store.fetchval("SELECT count(*) FROM tenants") == 2_000
