"""End to end: an HTTP mutation's event leaves through the outbox relay and the bus."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from triotok import Actor
from triotok.store import EventDeadLetters, Wake
from triotok.transport import Envelope, PermanentError

from .conftest import Server


class Collector(Actor):
    """Subscriber: records each envelope and sets ``arrived`` when ``tenant``'s comes.

    The tenant "poison" fails permanently (after setting ``arrived``).
    """

    def __init__(self, seen: list[Envelope], tenant: str, arrived: trio.Event) -> None:
        self.seen = seen
        self.tenant = tenant
        self.arrived = arrived

    async def receive(self, message: Any) -> None:
        assert isinstance(message, Envelope)
        if message.tenant_id == self.tenant:
            self.arrived.set()
        if message.tenant_id == "poison":
            raise PermanentError("cannot project this tenant")
        self.seen.append(message)


async def test_a_created_tenant_reaches_bus_subscribers_with_its_trace(server: Server) -> None:
    seen: list[Envelope] = []
    arrived = trio.Event()
    system, bus = server.app.system, server.app.bus
    ref = await system.spawn(Collector, seen, "flow", arrived, name="collector")
    await bus.subscribe("tenant.*", ref, group="projections")
    ops = server.auth(await server.operator())
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with trio.fail_after(20):
        response = await server.client.post(
            "/api/tenants",
            json={"id": "flow", "name": "Flow"},
            headers={**ops, "traceparent": traceparent},
        )
        assert response.status_code == 201
        await arrived.wait()
    [envelope] = [e for e in seen if e.tenant_id == "flow"]
    assert envelope.event_type == "tenant.created"
    assert envelope.trace_id == traceparent
    relay = system.tree(prefix="/app/transport/relay")["components"]["relay"]
    assert relay["delivered"] >= 1


async def test_a_permanent_failure_lands_in_the_dead_letter_queue(server: Server) -> None:
    seen: list[Envelope] = []
    failed = trio.Event()
    system, bus = server.app.system, server.app.bus
    ref = await system.spawn(Collector, seen, "poison", failed, name="collector")
    await bus.subscribe("tenant.created", ref)
    ops = server.auth(await server.operator())
    with trio.fail_after(20):
        response = await server.client.post(
            "/api/tenants", json={"id": "poison", "name": "P"}, headers=ops
        )
        assert response.status_code == 201
        await failed.wait()
        await trio.testing.wait_all_tasks_blocked()  # the bus dead-letters it meanwhile
    [dead] = await bus.dead_letters.list(subscriber=ref.path)
    assert dead.envelope.tenant_id == "poison"
    assert dead.error_type == "PermanentError"
    assert dead.attempts == 1
    # The relay handed it over and marked it delivered: nothing for its own table.
    assert await EventDeadLetters(server.services.store.store).count() == 0


async def test_operators_list_replay_and_purge_dead_lettered_events(server: Server) -> None:
    seen: list[Envelope] = []
    failed = trio.Event()
    system, bus = server.app.system, server.app.bus
    ref = await system.spawn(Collector, seen, "poison", failed, name="collector")
    await bus.subscribe("tenant.created", ref)
    ops = server.auth(await server.operator())
    client = server.client
    with trio.fail_after(20):
        await client.post("/api/tenants", json={"id": "poison", "name": "P"}, headers=ops)
        await failed.wait()
        await trio.testing.wait_all_tasks_blocked()
        listed = await client.get(
            "/system/event-dead-letters", params={"subscriber": ref.path}, headers=ops
        )
        assert listed.status_code == 200
        [item] = listed.json()["items"]
        assert (item["event_type"], item["tenant_id"]) == ("tenant.created", "poison")
        assert item["error"]["type"] == "PermanentError"
        # Replaying hands it back to the same subscriber, which fails again.
        replayed = await client.post(
            "/system/event-dead-letters/replay", params={"id": item["id"]}, headers=ops
        )
        assert replayed.json() == {"source": "bus", "replayed": 1}
        await trio.testing.wait_all_tasks_blocked()
        again = (await client.get("/system/event-dead-letters", headers=ops)).json()
        assert [i["tenant_id"] for i in again["items"]] == ["poison"]
        purged = await client.post(
            "/system/event-dead-letters/purge", params={"event_type": "tenant.created"}, headers=ops
        )
        assert purged.json() == {"source": "bus", "purged": 1}
        for action in ("replay", "purge"):
            missing = await client.post(
                f"/system/event-dead-letters/{action}", params={"id": 999}, headers=ops
            )
            assert missing.status_code == 404
            assert missing.json()["code"] == "not_found"
        outbox = await client.get(
            "/system/event-dead-letters", params={"source": "outbox"}, headers=ops
        )
        assert outbox.json() == {"source": "outbox", "total": 0, "items": []}
        log = (await client.get("/api/audit", headers=ops)).json()["items"]
    assert {"event_dead_letters.replay", "event_dead_letters.purge"} <= {e["action"] for e in log}


async def test_outbox_dead_letters_are_listed_replayed_and_purged(server: Server) -> None:
    table = EventDeadLetters(server.services.store.store)
    async with server.services.store.store.transaction() as tx:
        await tx.publish(b"not cbor", event_id="e-1", event_type="x.broken", tenant_id=None)
    ops = server.auth(await server.operator())
    client = server.client
    with trio.fail_after(20):
        while await table.count() == 0:  # the relay dead-letters the undecodable row
            await server.app.system.ref("/app/transport/relay").ask(Wake())
            await trio.testing.wait_all_tasks_blocked()
        listed = (
            await client.get("/system/event-dead-letters", params={"source": "outbox"}, headers=ops)
        ).json()
        assert [i["event_type"] for i in listed["items"]] == ["x.broken"]
        purged = await client.post(
            "/system/event-dead-letters/purge", params={"source": "outbox"}, headers=ops
        )
        assert purged.json() == {"source": "outbox", "purged": 1}
    assert await table.count() == 0
