"""Operator endpoints: the live tree, dead letters, restarting and stopping actors."""

from __future__ import annotations

import trio
import trio.testing

from tests.http.conftest import Server
from triotok import Actor


async def test_tree_and_its_filters(server: Server) -> None:
    ops = server.auth(await server.operator())
    client = server.client
    with trio.fail_after(10):
        whole = (await client.get("/system/tree", headers=ops)).json()
        shallow = (await client.get("/system/tree?depth=0", headers=ops)).json()
        sub = (await client.get("/system/tree?prefix=/app/tenants", headers=ops)).json()
        running = (await client.get("/system/tree?state=running", headers=ops)).json()
        failed = (await client.get("/system/tree?state=failed", headers=ops)).json()
        missing = await client.get("/system/tree?prefix=/app/nothing", headers=ops)
        bad = await client.get("/system/tree?state=sleepy", headers=ops)
    paths = [c["path"] for c in whole["children"]]
    # Modules start before the event plumbing, so their subscriptions exist before the relay.
    assert paths == [
        "/app/store",
        "/app/tenants",
        "/app/access",
        "/app/mode",
        "/app/modules",
        "/app/transport",
        "/app/plugins",
        "/app/http",
    ]
    assert shallow["children"] == []
    assert sub["path"] == "/app/tenants"
    assert "cache" in sub["components"]
    assert len(running["children"]) == len(paths)  # every top-level actor is running
    assert failed["children"] == []
    assert missing.status_code == 404
    assert missing.json()["code"] == "actor_not_found"
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_query"


async def test_restart_an_actor(server: Server) -> None:
    ops = server.auth(await server.operator())
    system = server.app.system
    with trio.fail_after(10):
        response = await server.client.post(
            "/system/actors/restart", params={"path": "/app/tenants"}, headers=ops
        )
        assert response.status_code == 200
        assert response.json() == {"path": "/app/tenants", "state": "running"}
        assert system.tree(prefix="/app/tenants", depth=0)["restarts"] == 1
        # The restarted resolver serves again.
        current = await server.client.get("/api/tenants/current", headers=ops)
        log = (await server.client.get("/api/audit", headers=ops)).json()["items"]
    assert current.status_code == 200
    assert any(e["action"] == "actor.restart" and e["resource"] == "actor/app/tenants" for e in log)


async def test_stop_an_actor_and_refuse_the_root(server: Server) -> None:
    class Idle(Actor):
        async def receive(self, message: object) -> None:
            return None

    await server.app.system.spawn(Idle, name="idle")
    ops = server.auth(await server.operator())
    with trio.fail_after(10):
        stopped = await server.client.post(
            "/system/actors/stop", params={"path": "/app/idle"}, headers=ops
        )
        again = await server.client.post(
            "/system/actors/stop", params={"path": "/app/idle"}, headers=ops
        )
        root = await server.client.post("/system/actors/stop", params={"path": "/app"}, headers=ops)
        nopath = await server.client.post("/system/actors/restart", headers=ops)
    assert stopped.status_code == 200
    assert stopped.json()["state"] == "stopped"
    assert again.status_code == 404
    assert root.status_code == 409
    assert nopath.status_code == 400


async def test_dead_letters(server: Server) -> None:
    class Crasher(Actor):
        async def receive(self, message: object) -> None:
            raise ValueError("boom")

    ref = await server.app.system.spawn(Crasher, name="crasher")
    ref.tell("poison")
    await trio.testing.wait_all_tasks_blocked()
    ops = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get("/system/dead-letters?limit=10", headers=ops)
    body = response.json()
    assert response.status_code == 200
    assert body["total"] >= 1
    letter = body["items"][-1]
    assert letter["recipient"] == "/app/crasher"
