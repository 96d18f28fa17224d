"""Fault tests with real processes: SIGKILL mid-stream, two nodes, a database restart.

Each node is ``python tests/store/_node.py`` (a producer, a relay and inbox
consumers under an actor system). The assertions count rows: every committed
``fault_data`` row has exactly one ``fault_effects`` row per consumer group
(effectively once), and the outbox holds nothing undelivered.

Waiting for another *process* to reach a state is done by polling the
database or reading its stdout, every ``POLL`` seconds, bounded by
``trio.fail_after``: there is no in-process event to wait on across a
process boundary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from tests.store._node import SCHEMA
from tests.store.conftest import SCHEMAS
from triotok.store import Store, open_store
from triotok.testing import PostgresCluster

pytestmark = pytest.mark.slow

NODE = Path(__file__).with_name("_node.py")
POLL = 0.1


class Node:
    """A running ``_node.py`` process and the lines it printed so far."""

    def __init__(self, process: trio.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[str] = []
        self._changed = trio.Event()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode() for line in complete)
            self._changed.set()
            self._changed = trio.Event()
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds after some output; fail if the process exits first."""
        while not condition():
            if self.process.returncode is not None:
                code = self.process.returncode
                raise AssertionError(f"{self.name} exited ({code}): {self.lines[-20:]}")
            await self._changed.wait()

    async def wait_line(self, line: str, count: int = 1) -> None:
        """Wait until ``line`` was printed ``count`` times."""
        await self.wait_until(lambda: self.lines.count(line) >= count)

    @property
    def committed(self) -> int:
        return sum(1 for line in self.lines if line.startswith("committed "))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if that takes too long."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                await self.process.wait()
        if self.alive:
            self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def open_nodes() -> AsyncIterator[Callable[..., trio.Process]]:
    """Start nodes with ``start(url, name, *args)``; every one is stopped on exit."""
    nodes: list[Node] = []
    async with trio.open_nursery() as nursery:

        async def start(url: str, name: str, *args: str) -> Node:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(NODE), url, "--name", name, *args],
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            node = Node(process, name)
            nodes.append(node)
            nursery.start_soon(node._read)
            return node

        try:
            yield start  # type: ignore[misc]  # an async starter, typed loosely for brevity
        finally:
            with trio.CancelScope(shield=True):
                for node in nodes:
                    await node.stop()


async def create_tables(url: str) -> None:
    async with open_store(url, schemas=SCHEMAS) as store:
        for statement in SCHEMA:
            await store.execute(statement)


async def counts(store: Store, group: str = "projector") -> tuple[int, int, int, int]:
    """(data rows, effects of ``group``, distinct events with an effect, undelivered rows)."""
    data = int(await store.fetchval("SELECT count(*) FROM fault_data"))
    effects = int(
        await store.fetchval("SELECT count(*) FROM fault_effects WHERE consumer = $1", group)
    )
    distinct = int(
        await store.fetchval(
            "SELECT count(DISTINCT event_id) FROM fault_effects WHERE consumer = $1", group
        )
    )
    undelivered = int(
        await store.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
    )
    return data, effects, distinct, undelivered


async def wait_all_applied(store: Store, groups: tuple[str, ...] = ("projector",)) -> None:
    """Poll (see the module docstring) until every data row's event is applied by each group."""
    while True:
        done = True
        for group in groups:
            data, _, distinct, undelivered = await counts(store, group)
            done = done and data > 0 and distinct == data and undelivered == 0
        if done:
            return
        await trio.sleep(POLL)


async def assert_effectively_once(store: Store, group: str = "projector") -> int:
    data, effects, distinct, undelivered = await counts(store, group)
    assert undelivered == 0
    assert effects == distinct == data  # none twice, none missing
    inbox = await store.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group)
    assert inbox == data
    missing = await store.fetchval(
        "SELECT count(*) FROM fault_data d WHERE NOT EXISTS"
        " (SELECT 1 FROM fault_effects e WHERE e.event_id = d.event_id AND e.consumer = $1)",
        group,
    )
    assert missing == 0
    # Atomicity: an outbox row exists exactly for each committed data row.
    assert await store.fetchval("SELECT count(*) FROM outbox") == data
    return data


# --------------------------------------------------------------------------- (a)


async def test_sigkill_mid_stream_then_every_committed_event_is_applied_once(
    store_url: str,
) -> None:
    await create_tables(store_url)
    with trio.fail_after(60):
        async with open_nodes() as start:
            writer = await start(store_url, "writer", "--produce", "-1", "--lease", "1")
            await writer.wait_line("started")
            await writer.wait_until(lambda: writer.committed >= 300)
            writer.process.kill()  # SIGKILL: no cleanup, leases and a half-done batch left
            await writer.process.wait()
            assert writer.process.returncode == -signal.SIGKILL

            async with open_store(store_url, schemas=SCHEMAS) as store:
                killed_at = await counts(store)
                recovery = await start(store_url, "recovery", "--lease", "1")
                await wait_all_applied(store)
                data = await assert_effectively_once(store)
    assert data >= 300
    # The writer was stopped mid-stream, with work of its relay in flight.
    assert killed_at[0] == data
    assert killed_at[3] > 0 or killed_at[1] < data
    assert recovery.alive is False  # stopped by open_nodes


# --------------------------------------------------------------------------- (b)


@pytest.mark.postgres
async def test_two_nodes_handle_each_event_once_per_consumer_group(pg_url: str) -> None:
    await create_tables(pg_url)
    groups = ("projector", "mailer")
    count = 400
    with trio.fail_after(60):
        async with open_nodes() as start, open_store(pg_url, schemas=SCHEMAS) as store:
            nodes = [
                await start(pg_url, name, "--groups", ",".join(groups), "--batch", "5")
                for name in ("node-a", "node-b")
            ]
            for node in nodes:
                await node.wait_line("started")
            producer = await start(pg_url, "producer", "--no-relay", "--produce", str(count))
            await producer.wait_line("produced")
            await wait_all_applied(store, groups)
            for group in groups:
                assert await assert_effectively_once(store, group) == count
            split = await store.fetch(
                "SELECT node, count(*) AS n FROM fault_effects GROUP BY node ORDER BY node"
            )
            assert all(node.alive for node in nodes)
    by_node = {row["node"]: int(row["n"]) for row in split}
    assert set(by_node) == {"node-a", "node-b"}  # both nodes claimed some
    assert sum(by_node.values()) == count * len(groups)


# --------------------------------------------------------------------------- (c)


@pytest.mark.postgres
async def test_a_database_restart_under_load_loses_no_committed_event(
    pg_cluster: PostgresCluster, pg_url: str
) -> None:
    await create_tables(pg_url)
    with trio.fail_after(90):
        async with open_nodes() as start:
            node = await start(pg_url, "node", "--lease", "2")
            producer = await start(pg_url, "producer", "--no-relay", "--produce", "-1")
            await node.wait_line("ready")
            await producer.wait_until(lambda: producer.committed >= 100)
            try:
                await trio.to_thread.run_sync(pg_cluster.stop)  # pg_ctl stop -m fast
                await node.wait_line("not-ready")
                down_at = producer.committed
            finally:
                if not pg_cluster.running:
                    await trio.to_thread.run_sync(pg_cluster.start)
            await node.wait_line("ready", count=2)
            # The producer resumes after the restart too.
            await producer.wait_until(lambda: producer.committed >= down_at + 100)
            await producer.stop()
            async with open_store(pg_url, schemas=SCHEMAS) as store:
                await wait_all_applied(store)
                data = await assert_effectively_once(store)
            assert node.alive  # the node rode out the outage
    assert data >= down_at + 100
    # For the log (pytest -s): relay restarts and statistics, printed by the node at stop.
    print(*(line for line in node.lines if line.startswith(("relay", "store-error"))), sep="\n")
    sequence = [line for line in node.lines if line in ("ready", "not-ready")]
    assert sequence[:3] == ["ready", "not-ready", "ready"]
    # The outage surfaced only as StoreUnavailable, and the relay rode it out
    # without crashing.
    assert [line for line in node.lines if line.startswith("store-error")] == []
    assert any(line.startswith("relay restarts=0 ") for line in node.lines)
