"""The tenant lifecycle over HTTP, the cached resolver and its invalidation."""

from __future__ import annotations

import httpx
import trio

from tests.http.conftest import Server
from triotok.modules.tenants import TenantRepository
from triotok.transport import Envelope

PROBLEM = "application/problem+json"


async def test_tenant_lifecycle(server: Server) -> None:
    ops = server.auth(await server.operator())
    client = server.client
    with trio.fail_after(20):
        created = await client.post(
            "/api/tenants", json={"id": "acme", "name": "Acme"}, headers=ops
        )
        assert created.status_code == 201, created.text
        assert created.headers["Location"] == "/api/tenants/acme"
        assert created.json()["version"] == 1
        assert created.json()["active"] is True

        again = await client.post("/api/tenants", json={"id": "acme", "name": "X"}, headers=ops)
        assert again.status_code == 409
        assert again.json()["code"] == "conflict"

        read = await client.get("/api/tenants/acme", headers=ops)
        assert read.status_code == 200
        assert read.json()["name"] == "Acme"

        listed = await client.get("/api/tenants", params={"limit": 10}, headers=ops)
        assert "acme" in [t["id"] for t in listed.json()["items"]]

        patched = await client.patch(
            "/api/tenants/acme",
            json={"name": "Acme Inc.", "settings": {"plan": "pro"}},
            headers=ops,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == 2
        assert patched.json()["settings"] == {"plan": "pro"}

        stale = await client.patch(
            "/api/tenants/acme", json={"name": "Y", "version": 1}, headers=ops
        )
        assert stale.status_code == 409

        # A key of the tenant sees its own tenant, updated (the cache was invalidated).
        key = server.auth(await server.key("acme", "viewer"), "acme")
        current = await client.get("/api/tenants/current", headers=key)
        assert current.status_code == 200
        assert current.json()["name"] == "Acme Inc."

        gone = await client.post("/api/tenants/acme/deactivate", headers=ops)
        assert gone.status_code == 200
        assert gone.json()["active"] is False
        denied = await client.get("/api/tenants/current", headers=key)
        assert denied.status_code == 403
        assert denied.json()["code"] == "tenant_inactive"

        missing = await client.get("/api/tenants/nobody", headers=ops)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM


async def test_mutations_are_audited(server: Server) -> None:
    admin = server.auth(await server.key("globex", "admin"))
    with trio.fail_after(20):
        response = await server.client.patch(
            "/api/tenants/current", json={"name": "Globex Corp"}, headers=admin
        )
        assert response.status_code == 200
        made = await server.client.post("/api/keys", json={"role": "viewer"}, headers=admin)
        assert made.status_code == 201
        assert made.json()["key"].startswith("ttk_")
        log = (await server.client.get("/api/audit", headers=admin)).json()["items"]
    actions = [(e["action"], e["resource"], e["tenant_id"]) for e in log]
    assert ("tenant.update", "tenant/globex", "globex") in actions
    assert ("key.create", f"key/{made.json()['id']}", "globex") in actions
    assert all(e["actor"].startswith(("key:", "test")) and e["at"] for e in log)


async def test_revoked_key_stops_working(server: Server) -> None:
    admin = server.auth(await server.key("initech", "admin"))
    with trio.fail_after(20):
        made = (
            await server.client.post("/api/keys", json={"role": "viewer"}, headers=admin)
        ).json()
        viewer = server.auth(made["key"])
        assert (await server.client.get("/api/tenants/current", headers=viewer)).status_code == 200
        revoked = await server.client.delete(f"/api/keys/{made['id']}", headers=admin)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"]
        after = await server.client.get("/api/tenants/current", headers=viewer)
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_api_key"


async def test_stampede_on_an_uncached_tenant_makes_one_store_query(server: Server) -> None:
    key = await server.key("stampede", "viewer")
    headers = server.auth(key, "stampede")
    server.services.tenants.invalidate("stampede")
    repo = server.services.context.get(TenantRepository)
    before = repo.statistics().lookups
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:

        async def one() -> None:
            response = await client.get("/api/tenants/current", headers=headers)
            statuses.append(response.status_code)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(200):
                    nursery.start_soon(one)
    assert statuses == [200] * 200
    assert repo.statistics().lookups - before == 1


async def test_unknown_tenants_are_cached_negatively(server: Server) -> None:
    directory = server.services.tenants
    repo = server.services.context.get(TenantRepository)
    before = repo.statistics().lookups
    with trio.fail_after(10):
        for _ in range(5):
            assert await directory.get("ghost") is None
    assert repo.statistics().lookups - before == 1
    # Creating it over HTTP drops the negative entry at once.
    ops = server.auth(await server.operator())
    with trio.fail_after(10):
        made = await server.client.post(
            "/api/tenants", json={"id": "ghost", "name": "G"}, headers=ops
        )
    assert made.status_code == 201
    with trio.fail_after(10):
        tenant = await directory.get("ghost")
    assert tenant is not None
    assert tenant.name == "G"


async def test_events_from_another_node_invalidate_the_cache(server: Server) -> None:
    """A change written by another process reaches this node's cache through the outbox feed."""
    await server.tenant("remote", "Before")
    directory = server.services.tenants
    with trio.fail_after(10):
        tenant = await directory.get("remote")
    assert tenant is not None
    assert tenant.name == "Before"
    # Write as another node would: through the repository, without touching our cache.
    seen = trio.Event()

    async def watch(envelope: Envelope) -> None:
        if envelope.event_type == "tenant.updated":
            seen.set()

    await server.app.events.subscribe("test-watch", watch)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await server.services.context.get(TenantRepository).update(
        "remote", name="After", actor="other-node", trace_id=traceparent
    )
    with trio.fail_after(10):
        await seen.wait()
        tenant = await directory.get("remote")
    assert tenant is not None
    assert tenant.name == "After"


async def test_events_carry_the_request_traceparent(server: Server) -> None:
    captured: list[Envelope] = []
    arrived = trio.Event()

    async def watch(envelope: Envelope) -> None:
        if envelope.tenant_id == "traced":
            captured.append(envelope)
            arrived.set()

    await server.app.events.subscribe("test-trace", watch)
    ops = server.auth(await server.operator())
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with trio.fail_after(10):
        response = await server.client.post(
            "/api/tenants",
            json={"id": "traced", "name": "T"},
            headers={**ops, "traceparent": traceparent},
        )
        assert response.status_code == 201
        await arrived.wait()
    envelope = captured[0]
    assert envelope.event_type == "tenant.created"
    assert envelope.trace_id == traceparent
    assert envelope.actor_id is not None
    assert envelope.actor_id.startswith("key:")
