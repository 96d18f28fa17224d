"""The application on L2: ``--events`` wiring, ``/system/events``, replay, ``/health``.

Each test runs its own ``nats-server -js`` (the application's stream name and
subjects are the configured ones, so tests must not share a server).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from triotok.app import MODULES
from triotok.http._models import validation_errors
from triotok.http._system_models import EventReplayStarted, EventStream
from triotok.modules import Module, Subscription
from triotok.testing import NatsServer
from triotok.transport import Envelope

from .conftest import Server, ServerFactory

pytestmark = pytest.mark.nats

TIMEOUT = 30


class Seen:
    """What the test module's handler got, with an event per arrival."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.changed = trio.Event()

    async def handle(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(TIMEOUT):
            while len(self.envelopes) < count:
                await self.changed.wait()

    def of(self, tenant: str) -> list[str]:
        return [e.event_type for e in self.envelopes if e.tenant_id == tenant]


def watcher(seen: Seen) -> Module:
    """A module whose consumer group ``watcher`` records every tenant event."""
    return Module(
        name="watcher",
        subscriptions=(Subscription("tenant.*", lambda ctx: seen.handle),),
    )


async def eventually(check: Any) -> None:
    """A condition of another process (the NATS server): checked on a short tick."""
    with trio.fail_after(TIMEOUT):
        while not check():
            with trio.move_on_after(0.05):
                await trio.Event().wait()


async def test_l1_has_no_stream(server: Server) -> None:
    ops = server.auth(await server.operator())
    response = await server.client.get("/system/events", headers=ops)
    assert response.status_code == 409
    assert response.json()["code"] == "no_event_stream"
    health = (await server.client.get("/health")).json()
    assert "events" not in health["subsystems"]
    assert server.app.stream is None


async def test_an_http_mutation_travels_over_the_stream_and_replays(
    make_server: ServerFactory, own_nats_server: NatsServer
) -> None:
    seen = Seen()
    modules = (*MODULES, watcher(seen))
    async with make_server(events_url=own_nats_server.url, modules=modules) as server:
        assert server.app.stream is not None
        tree = server.app.system.tree(prefix="/app/transport", depth=1)
        assert [child["name"] for child in tree["children"]] == ["feed", "stream", "bus", "relay"]
        ops = server.auth(await server.operator())
        response = await server.client.post(
            "/api/tenants", json={"id": "acme", "name": "Acme"}, headers=ops
        )
        assert response.status_code == 201
        await eventually(lambda: seen.of("acme") == ["tenant.created"])

        stream = server.app.stream
        store = server.app.context.store.store
        with trio.fail_after(TIMEOUT):
            while await store.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"):  # noqa: ASYNC110  # the relay runs on threads and sockets: poll
                await trio.sleep(0.05)
        rows = int(await store.fetchval("SELECT count(*) FROM outbox"))

        def caught_up() -> bool:
            # The server's numbers, polled about once a second: wait until they
            # show every outbox row (the operator's key and the tenant both wrote events).
            stats = stream.statistics()
            return stats.lag == 0 and bool(stats.state) and stats.state["last_seq"] == rows

        await eventually(caught_up)
        state = (await server.client.get("/system/events", headers=ops)).json()
        assert validation_errors(EventStream, state) == []
        [consumer] = [c for c in state["consumers"] if c["group"] == "watcher"]
        assert consumer["pattern"] == "tenant.*"
        assert consumer["server"]["lag"] == 0
        assert state["connected"] is True
        assert state["state"]["last_seq"] >= 1
        health = (await server.client.get("/health")).json()
        assert health["subsystems"]["events"]["status"] == "up"

        before = len(seen.envelopes)
        replay = await server.client.post(
            "/system/events/replay", json={"group": "watcher", "from_seq": 1}, headers=ops
        )
        assert replay.status_code == 200, replay.text
        assert replay.json()["pending"] == state["state"]["last_seq"]
        assert validation_errors(EventReplayStarted, replay.json()) == []
        await seen.wait_for(before + replay.json()["pending"])
        assert seen.of("acme") == ["tenant.created", "tenant.created"]  # seen again
        audit = (await server.client.get("/api/audit", headers=ops)).json()
        assert any(item["action"] == "events.replay" for item in audit["items"])


async def test_replay_refuses_bad_requests_and_tenant_admins(
    make_server: ServerFactory, own_nats_server: NatsServer
) -> None:
    seen = Seen()
    modules = (*MODULES, watcher(seen))
    async with make_server(events_url=own_nats_server.url, modules=modules) as server:
        ops = server.auth(await server.operator())
        cases = [
            ({"group": "watcher"}, 422),  # neither from_seq nor since
            ({"group": "watcher", "from_seq": 1, "since": 1_700_000_000}, 422),
            ({"group": "watcher", "since": "2024-01-01T00:00:00Z"}, 422),  # seconds, not ISO
            ({"group": "watcher", "from_seq": 1, "extra": 1}, 422),
            ({"group": "watcher", "from_seq": 0}, 422),
            ({"group": "no/slash", "from_seq": 1}, 422),
            ({"group": "nobody", "from_seq": 1}, 404),
        ]
        for body, status in cases:
            response = await server.client.post("/system/events/replay", json=body, headers=ops)
            assert response.status_code == status, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        tenant_admin = server.auth(await server.key("acme", "admin"))
        for method, path in (("GET", "/system/events"), ("POST", "/system/events/replay")):
            response = await server.client.request(
                method, path, json={"group": "watcher", "from_seq": 1}, headers=tenant_admin
            )
            assert response.status_code == 403, path


async def test_an_outage_makes_the_node_degraded_not_unready(
    make_server: ServerFactory, own_nats_server: NatsServer
) -> None:
    seen = Seen()
    modules = (*MODULES, watcher(seen))
    async with make_server(events_url=own_nats_server.url, modules=modules) as server:
        ops = server.auth(await server.operator())
        await trio.to_thread.run_sync(own_nats_server.stop)
        # A write while the stream is away: committed, kept in the outbox.
        response = await server.client.post(
            "/api/tenants", json={"id": "during", "name": "During"}, headers=ops
        )
        assert response.status_code == 201
        stream = server.app.stream
        assert stream is not None
        await eventually(lambda: not stream.statistics().available)
        health = await server.client.get("/health")
        assert health.status_code == 503
        assert health.json()["subsystems"]["events"]["status"] == "degraded"
        assert (await server.client.get("/ready")).status_code == 200
        await trio.to_thread.run_sync(own_nats_server.start)
        await eventually(lambda: seen.of("during") == ["tenant.created"])
        await eventually(lambda: stream.statistics().available)
        assert (await server.client.get("/health")).status_code == 200
