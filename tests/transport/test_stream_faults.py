"""L2 fault tests with real processes: SIGKILL mid-stream, a NATS restart under load, a
consumer killed mid-batch.

Each node is ``python tests/store/_node.py URL --events nats://...``: its relay
forwards the outbox to a real ``nats-server -js`` and each consumer group reads
its durable consumer there, applying effects through the inbox. The assertions
are those of the L1 fault tests (``tests/store/test_faults.py``), on rows:
every committed event has exactly one effect per group, none missing, and the
outbox holds nothing undelivered.
"""

from __future__ import annotations

import signal

import pytest
import trio

from tests.conftest import stream_config
from tests.store.conftest import SCHEMAS
from tests.store.test_faults import (
    assert_effectively_once,
    counts,
    create_tables,
    open_nodes,
    wait_all_applied,
)
from triotok.store import open_store
from triotok.testing import NatsServer

pytestmark = [pytest.mark.slow, pytest.mark.nats]


def l2(server: NatsServer) -> list[str]:
    """The node options of a stream of this test alone on ``server``."""
    config = stream_config(server)
    return ["--events", server.url, "--stream", config.stream, "--prefix", config.subject_prefix]


async def test_sigkill_of_the_relays_node_mid_stream_loses_nothing(
    store_url: str, nats_server: NatsServer
) -> None:
    await create_tables(store_url)
    stream = l2(nats_server)
    with trio.fail_after(90):
        async with open_nodes() as start:
            writer = await start(store_url, "writer", "--produce", "-1", "--lease", "1", *stream)
            await writer.wait_line("started")
            await writer.wait_until(lambda: writer.committed >= 300)
            writer.process.kill()  # mid-stream: rows forwarded, not yet marked; unacked events
            await writer.process.wait()
            assert writer.process.returncode == -signal.SIGKILL
            async with open_store(store_url, schemas=SCHEMAS) as store:
                killed_at = await counts(store)
                await start(store_url, "recovery", "--lease", "1", *stream)
                await wait_all_applied(store)
                data = await assert_effectively_once(store)
    assert data >= 300
    assert killed_at[0] == data
    assert killed_at[3] > 0 or killed_at[1] < data  # work was in flight when it died


@pytest.mark.postgres
async def test_a_nats_restart_under_load_loses_no_committed_event(
    pg_url: str, own_nats_server: NatsServer
) -> None:
    server = own_nats_server
    await create_tables(pg_url)
    stream = l2(server)
    with trio.fail_after(120):
        async with open_nodes() as start:
            node = await start(pg_url, "node", "--groups", "projector,mailer", *stream)
            producer = await start(pg_url, "producer", "--no-relay", "--produce", "-1")
            await node.wait_line("started")
            await producer.wait_until(lambda: producer.committed >= 100)
            try:
                await trio.to_thread.run_sync(server.stop)
                down_at = producer.committed
                # Commits go on while the stream is away: the outbox keeps them.
                await producer.wait_until(lambda: producer.committed >= down_at + 100)
            finally:
                if not server.running:
                    await trio.to_thread.run_sync(server.start)
            await producer.wait_until(lambda: producer.committed >= down_at + 200)
            await producer.stop()
            async with open_store(pg_url, schemas=SCHEMAS) as store:
                try:
                    with trio.fail_after(60):
                        await wait_all_applied(store, ("projector", "mailer"))
                except trio.TooSlowError:
                    print(*node.lines[-8:], sep="\n")
                    node.process.send_signal(signal.SIGUSR1)  # its stacks go to stderr
                    await trio.sleep(1)
                    raise
                for group in ("projector", "mailer"):
                    data = await assert_effectively_once(store, group)
            assert node.alive  # it rode out the outage
    assert data >= down_at + 200


@pytest.mark.postgres
async def test_a_consumer_killed_mid_batch_leaves_each_effect_once(
    pg_url: str, nats_server: NatsServer
) -> None:
    await create_tables(pg_url)
    stream = l2(nats_server)
    count = 600
    with trio.fail_after(120):
        async with open_nodes() as start, open_store(pg_url, schemas=SCHEMAS) as store:
            nodes = [
                await start(pg_url, name, "--batch", "5", "--ack-wait", "1", *stream)
                for name in ("node-a", "node-b")
            ]
            for node in nodes:
                await node.wait_line("started")
            producer = await start(pg_url, "producer", "--no-relay", "--produce", str(count))

            async def applied_by_b() -> int:
                return int(
                    await store.fetchval("SELECT count(*) FROM fault_effects WHERE node = 'node-b'")
                )

            with trio.fail_after(60):
                while True:  # another process: nothing to wait on but its rows
                    if await applied_by_b() >= 50:
                        break
                    await trio.sleep(0.05)
            nodes[1].process.kill()  # mid-batch: events delivered to it, not acknowledged
            await nodes[1].process.wait()
            await producer.wait_line("produced")
            await wait_all_applied(store)
            assert await assert_effectively_once(store) == count
            split = await store.fetch(
                "SELECT node, count(*) AS n FROM fault_effects GROUP BY node ORDER BY node"
            )
            assert nodes[0].alive
    by_node = {row["node"]: int(row["n"]) for row in split}
    assert set(by_node) == {"node-a", "node-b"}  # both handled some before the kill
    assert sum(by_node.values()) == count
