"""End to end over L2: an HTTP write on node A reaches the search module of node B.

Two node processes (``tests/appnode.py``) share one PostgreSQL database and
one NATS JetStream server. Node B runs the whole application; node A runs
without the search module (``--without search``): it serves the writes and
keeps no read model. On L2 a relay forwards outbox rows to the stream, never
to a bus, so what A writes can reach B's index only through JetStream and B's
``search`` consumer group.

The test runs its own ``nats-server -js``: the application's subjects are
always ``triotok.>`` (only the stream's name is a setting), and JetStream
refuses a second stream on the same subjects.

Waiting for the other processes (B's index, the relays' marks) is polling
over HTTP and the database every ``POLL`` seconds, bounded by
``trio.fail_after``: there is no in-process event to wait on across a process
boundary.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.appnode import node_env, start_node
from triotok.store import open_store
from triotok.testing import NatsServer
from triotok.transport import JetStreamConfig, open_stream_admin

pytestmark = [pytest.mark.slow, pytest.mark.nats, pytest.mark.postgres]

POLL = 0.05
STREAM = "TWO_NODES"
BOARD = {"sku": "BOARD-1", "title": "Walnut cutting board", "price": 3900, "currency": "EUR"}
PAGE = {"kind": "page", "translations": {"en": {"title": "Caring for walnut", "slug": "walnut"}}}


async def eventually(check: Callable[[], Any]) -> Any:
    """Poll another process's state (``check``, async) until it answers something true."""
    while not (found := await check()):  # noqa: ASYNC110  # another process's state: no event to wait on
        await trio.sleep(POLL)
    return found


def search_groups(events: httpx.Response) -> list[dict[str, Any]]:
    """The consumers of the ``search`` group that a node's ``/system/events`` shows."""
    assert events.status_code == 200, events.text
    return [c for c in events.json()["consumers"] if c["group"] == "search"]


async def modules_of(client: httpx.AsyncClient, ops: dict[str, str]) -> set[str]:
    tree = await client.get(
        "/system/tree", params={"prefix": "/app/modules", "depth": 1}, headers=ops
    )
    assert tree.status_code == 200, tree.text
    return {child["name"] for child in tree.json()["children"]}


async def test_a_write_on_a_node_without_search_is_indexed_by_another_node(
    tmp_path: Path, pg_url: str, own_nats_server: NatsServer
) -> None:
    settings = {"store_url": pg_url, "events_url": own_nats_server.url, "events_stream": STREAM}
    async with trio.open_nursery() as nursery:
        with trio.fail_after(90):
            # B first: it migrates every module's tables and creates the search
            # group's consumers, which start at the stream's end (new_group_start).
            back, back_port = await start_node(
                node_env(**settings, search_consistency_wait="20"), nursery
            )
            front, front_port = await start_node(
                node_env(**settings, demo="true"), nursery, "--without", "search", cwd=tmp_path
            )
            # On PostgreSQL --demo keeps its keys in ./triotok-data, here A's cwd.
            keys = json.loads((tmp_path / "triotok-data" / "demo-keys.json").read_text())
            auth = {"Authorization": f"Bearer {keys['demo']}"}
            ops = {"Authorization": f"Bearer {keys['ops']}"}
            async with (
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{front_port}", timeout=10) as a,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{back_port}", timeout=10) as b,
            ):
                assert "search" not in await modules_of(a, ops)
                assert "search" in await modules_of(b, ops)
                unrouted = await a.get("/api/search", params={"q": "walnut"}, headers=auth)
                assert unrouted.status_code == 404, unrouted.text

                # Every write goes to A.
                created = await a.post("/api/products", json=BOARD, headers=auth)
                assert created.status_code == 201, created.text
                product = created.json()["id"]
                activated = await a.patch(
                    f"/api/products/{product}",
                    json={"status": "active"},
                    headers={**auth, "If-Match": '"1"'},
                )
                assert activated.status_code == 200, activated.text
                drafted = await a.post("/api/content/nodes", json=PAGE, headers=auth)
                assert drafted.status_code == 201, drafted.text
                page = drafted.json()["id"]
                published = await a.post(
                    f"/api/content/nodes/{page}/publish", headers={**auth, "If-Match": '"1"'}
                )
                assert published.status_code == 200, published.text
                token = published.headers["X-Consistency-Token"]

                # Read-your-writes across nodes over L2: B answers once its own
                # search consumer applied the event (not merely once the stream had it).
                fresh = await b.get(
                    "/api/search",
                    params={"q": "walnut", "type": "content", "min_token": token},
                    headers=auth,
                )
                assert fresh.status_code == 200, fresh.text
                assert "X-Consistency-Stale" not in fresh.headers
                assert [(i["id"], i["status"]) for i in fresh.json()["items"]] == [
                    (page, "published")
                ]

                # Every read of the index goes to B.
                async def hit(kind: str, wanted: str, status: str) -> dict[str, Any] | None:
                    found = await b.get(
                        "/api/search", params={"q": "walnut", "type": kind}, headers=auth
                    )
                    assert found.status_code == 200, found.text
                    items = [i for i in found.json()["items"] if i["id"] == wanted]
                    return items[0] if items and items[0]["status"] == status else None

                board = await eventually(lambda: hit("product", product, "active"))
                article = await eventually(lambda: hit("content", page, "published"))
                front_events = await a.get("/system/events", headers=ops)
                back_events = await b.get("/system/events", headers=ops)

            async with open_store(pg_url) as store:

                async def drained() -> bool:
                    undelivered = "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL"
                    return not await store.fetchval(undelivered)

                await eventually(drained)
                rows = await store.fetchval("SELECT COUNT(*) FROM outbox")
            config = JetStreamConfig(own_nats_server.url, stream=STREAM)
            async with open_stream_admin(config) as admin:
                state = await admin.stream_state()

            for proc in (front, back):
                proc.send_signal(signal.SIGTERM)
            assert await front.wait() == 0
            assert await back.wait() == 0

    assert (board["title"], board["sku"]) == (BOARD["title"], BOARD["sku"])
    assert board["version"] == 2  # created, then activated
    assert (article["title"], article["kind"]) == ("Caring for walnut", "page")
    # Each outbox row crossed the stream once (the relays of both nodes
    # forwarded; the server kept one copy per event id).
    assert state.messages == state.last_seq == rows
    # B's search group took the events from JetStream (ours, after --demo's);
    # A has no such consumer.
    assert sum(c["received"] for c in search_groups(back_events)) >= 4
    assert search_groups(front_events) == []
