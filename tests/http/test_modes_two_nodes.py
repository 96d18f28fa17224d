"""Two nodes on one store: the operator's override and flag changes reach both.

Both applications run in this test's loop on the same store (a SQLite file or
a PostgreSQL database), each with its own server, tree, mode and flag cache:
what one node learns from the other comes only through the store's outbox,
as between processes. Waiting for the other node is polling (its feed
polls), bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import trio

from tests.http.conftest import Server, ServerFactory
from tests.http.test_bad_input import assert_problem
from triotok.modules.modes import ModeControl

POLL = 0.05


async def until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110  # the other node learns through its feed's polling
        await trio.sleep(POLL)


async def test_the_override_with_its_expiry_holds_on_both_nodes(
    make_server: ServerFactory,
) -> None:
    async with make_server() as a, make_server() as b:
        ops = a.auth(await a.operator())
        key = a.auth(await a.key("acme"))
        with trio.fail_after(30):
            set_on_a = await a.client.post(
                "/system/mode",
                json={"mode": "read_only", "reason": "migration", "expires_in": 2},
                headers=ops,
            )
            assert set_on_a.status_code == 200, set_on_a.text
            await b.wait_mode("read_only")
            refused = await b.client.patch("/api/tenants/current", json={"name": "B"}, headers=key)
            view = (await b.client.get("/system/mode", headers=ops)).json()
            # The same instant of expiry on both (a UTC timestamp, converted by each).
            await a.wait_mode("full")
            await b.wait_mode("full")
            admitted = await b.client.patch("/api/tenants/current", json={"name": "B"}, headers=key)
            # An override without expiry, set on b and lifted on a.
            await b.client.post(
                "/system/mode", json={"mode": "offline", "reason": "drill"}, headers=ops
            )
            await a.wait_mode("offline")
            lifted = await a.client.delete("/system/mode", headers=ops)
            await b.wait_mode("full")
            nodes = (await a.client.get("/system/mode", headers=ops)).json()["nodes"]
    assert_problem(refused, 503, "read_only")
    assert view["override"]["reason"] == "migration"
    assert view["override"]["actor"].startswith("key:")
    assert view["scope"] == "cluster"
    assert admitted.status_code == 200
    assert lifted.json()["mode"] == "full"
    node_ids = {n["node"] for n in nodes}
    ours = {s.services.context.get(ModeControl).node_id for s in (a, b)}
    assert len(ours) == 2
    assert ours <= node_ids


async def _put(server: Server, name: str, **rules: object) -> httpx.Response:
    return await server.client.put(
        f"/system/flags/{name}", json=rules, headers=server.auth(await server.operator())
    )


async def test_a_flag_change_reaches_every_nodes_cache(make_server: ServerFactory) -> None:
    async with make_server() as a, make_server() as b:
        on_a, on_b = a.services.context.flags, b.services.context.flags
        acme = a.auth(await a.key("acme"))
        with trio.fail_after(30):
            created = await _put(a, "checkout.v2", enabled=True, rollout=0, tenant_editable=True)
            assert created.status_code == 200, created.text
            await until(lambda: on_b.get("checkout.v2") is not None)
            assert on_b.enabled("checkout.v2", tenant="acme") is False
            await _put(b, "checkout.v2", enabled=True, rollout=100, tenant_editable=True)
            await until(lambda: (on_a.get("checkout.v2") or created).version == 2)
            assert on_a.enabled("checkout.v2", tenant="acme") is True
            # A tenant's own choice, made on a, holds on b.
            chose = await a.client.put(
                "/api/flags/checkout.v2", json={"enabled": False}, headers=acme
            )
            assert chose.status_code == 200, chose.text
            await until(lambda: on_b.tenant_value("checkout.v2", "acme") is False)
            assert on_b.enabled("checkout.v2", tenant="acme") is False
            assert on_b.enabled("checkout.v2", tenant="globex") is True
            deleted = await b.client.delete(
                "/system/flags/checkout.v2", headers=b.auth(await b.operator())
            )
            await until(lambda: on_a.get("checkout.v2") is None)
    assert deleted.status_code == 204
    assert on_a.tenant_value("checkout.v2", "acme") is None


async def test_a_tenants_flag_choice_is_its_own(make_server: ServerFactory) -> None:
    async with make_server() as server:
        acme = server.auth(await server.key("acme"))
        globex = server.auth(await server.key("globex"))
        viewer = server.auth(await server.key("acme", "viewer"))
        with trio.fail_after(20):
            await _put(server, "dark.mode", enabled=True, rollout=0, tenant_editable=True)
            await _put(server, "ops.only", enabled=True, rollout=100)
            chose = await server.client.put(
                "/api/flags/dark.mode", json={"enabled": True}, headers=acme
            )
            mine = (await server.client.get("/api/flags", headers=acme)).json()["items"]
            theirs = (await server.client.get("/api/flags", headers=globex)).json()["items"]
            # globex's admin naming acme does not reach acme's flags.
            crossing = await server.client.put(
                "/api/flags/dark.mode",
                json={"enabled": False},
                headers=globex | {"X-Tenant": "acme"},
            )
            not_editable = await server.client.put(
                "/api/flags/ops.only", json={"enabled": False}, headers=acme
            )
            unknown = await server.client.put(
                "/api/flags/nope", json={"enabled": False}, headers=acme
            )
            as_viewer = await server.client.get("/api/flags", headers=viewer)
            audit = (await server.client.get("/api/audit", headers=acme)).json()["items"]
    assert chose.status_code == 200
    assert chose.json()["reason"] == "tenant"
    assert {f["name"]: f["enabled"] for f in mine} == {"dark.mode": True, "ops.only": True}
    assert {f["name"]: f["enabled"] for f in theirs} == {"dark.mode": False, "ops.only": True}
    assert crossing.status_code == 403
    assert server.services.context.flags.enabled("dark.mode", tenant="acme") is True
    assert_problem(not_editable, 403, "flag_not_editable")
    assert_problem(unknown, 404, "not_found")
    assert as_viewer.status_code == 403  # flags are for a tenant's admins
    assert audit[0]["action"] == "flag.tenant_set"
    assert audit[0]["resource"] == "flags/dark.mode"
