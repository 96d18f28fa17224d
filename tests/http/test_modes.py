"""The service-mode gate over real HTTP: each mode admits what its table says, at once.

The mode is set by the operator's override (``POST /system/mode``) or by
forcing the store's read breaker open (what the breaker does by itself when
the database goes away; tests/http/test_outage.py stops a real one). A
small module adds an optional route, a critical write and a flagged route.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from tests.http.test_bad_input import assert_problem
from triotok.app import MODULES
from triotok.http import Call, Route
from triotok.modules import Module, Permission
from triotok.modules.modes import ModeControl

READ = Permission("tenant", "read")


async def optional_report(call: Call) -> dict[str, Any]:
    return {"report": "expensive"}


async def critical_write(call: Call) -> dict[str, Any]:
    return {"written": True}


async def beta(call: Call) -> dict[str, Any]:
    return {"beta": True}


def _routes() -> tuple[Route, ...]:
    return (
        Route("GET", "/api/extra/report", optional_report, "x", "extra", READ,
              criticality="optional"),
        Route("POST", "/api/extra/critical", critical_write, "x", "extra", READ,
              criticality="critical"),
        Route("GET", "/api/extra/beta", beta, "x", "extra", READ, flag="extra.beta"),
        Route("GET", "/extra/public-beta", beta, "x", "extra", None, flag="extra.beta",
              operation_id="publicBeta"),
    )  # fmt: skip


EXTRA = Module(name="extra", routes=_routes)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The gate does not depend on the backend: SQLite (test_outage.py runs PostgreSQL)."""
    return f"sqlite:///{tmp_path}/triotok.db"


@pytest.fixture
async def server(make_server: ServerFactory) -> Any:
    async with make_server(modules=(*MODULES, EXTRA)) as running:
        yield running


async def override(server: Server, mode: str, expires_in: float | None = None) -> httpx.Response:
    body: dict[str, Any] = {"mode": mode, "reason": f"test {mode}"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    response = await server.client.post(
        "/system/mode", json=body, headers=server.auth(await server.operator())
    )
    assert response.status_code == 200, response.text
    return response


async def statuses(server: Server) -> dict[str, int]:
    """What each kind of route answers now."""
    key = server.auth(await server.key("acme"))
    ops = server.auth(await server.operator())
    client = server.client
    return {
        "critical read": (await client.get("/api/tenants/current", headers=key)).status_code,
        "normal read": (await client.get("/api/audit", headers=key)).status_code,
        "optional read": (await client.get("/api/extra/report", headers=key)).status_code,
        "critical write": (await client.post("/api/extra/critical", headers=key)).status_code,
        "normal write": (
            await client.patch("/api/tenants/current", json={"name": "Acme"}, headers=key)
        ).status_code,
        "health": (await client.get("/health")).status_code,
        "live": (await client.get("/live")).status_code,
        "operator": (await client.get("/system/mode", headers=ops)).status_code,
    }


ALL_OK = {
    "critical read": 200,
    "normal read": 200,
    "optional read": 200,
    "critical write": 200,
    "normal write": 200,
    "health": 200,
    "live": 200,
    "operator": 200,
}


async def test_each_mode_admits_what_its_table_says(server: Server) -> None:
    with trio.fail_after(30):
        assert await statuses(server) == ALL_OK
        await override(server, "degraded")
        assert await statuses(server) == {**ALL_OK, "optional read": 503}
        await override(server, "read_only")
        assert await statuses(server) == {
            **ALL_OK,
            "optional read": 503,
            "critical write": 503,
            "normal write": 503,
        }
        await override(server, "offline")
        offline = await statuses(server)
        await override(server, "full")
        back = await statuses(server)
    # offline: the control plane and critical reads only.
    assert offline == {
        **ALL_OK,
        "normal read": 503,
        "optional read": 503,
        "critical write": 503,
        "normal write": 503,
    }
    assert back == ALL_OK


async def test_a_refusal_is_a_problem_with_the_mode_as_code_and_retry_after(
    server: Server,
) -> None:
    key = server.auth(await server.key("acme"))
    with trio.fail_after(20):
        await override(server, "read_only", expires_in=30)
        write = await server.client.patch("/api/tenants/current", json={"name": "X"}, headers=key)
        await override(server, "degraded")
        optional = await server.client.get("/api/extra/report", headers=key)
        await override(server, "offline")
        unauthenticated = await server.client.get("/api/audit")
        ops = server.auth(await server.operator())
        view = (await server.client.get("/system/mode", headers=ops)).json()
    problem = assert_problem(write, 503, "read_only")
    assert problem["type"] == "urn:triotok:problem:read_only"
    assert 1 <= int(write.headers["Retry-After"]) <= 30  # until the override expires
    assert_problem(optional, 503, "degraded")
    assert int(optional.headers["Retry-After"]) >= 1
    # The gate comes before authentication: nothing touches the key cache or the store.
    assert_problem(unauthenticated, 503, "offline")
    assert view["statistics"]["refused"] == {"read_only": 1, "degraded": 1, "offline": 1}
    assert [change["to"] for change in view["history"]] == ["offline", "degraded", "read_only"]


async def test_the_override_expires_by_itself(server: Server) -> None:
    key = server.auth(await server.key("acme"))
    with trio.fail_after(20):
        response = await override(server, "read_only", expires_in=0.5)
        assert response.json()["override"]["expires_at"].endswith("Z")
        refused = await server.client.patch("/api/tenants/current", json={"name": "X"}, headers=key)
        await server.wait_mode("full")
        admitted = await server.client.patch(
            "/api/tenants/current", json={"name": "X"}, headers=key
        )
    assert_problem(refused, 503, "read_only")
    assert admitted.status_code == 200


async def test_delete_ends_the_override_and_both_are_audited(server: Server) -> None:
    ops = server.auth(await server.operator())
    with trio.fail_after(20):
        await override(server, "offline")
        cleared = await server.client.delete("/system/mode", headers=ops)
        audit = (await server.client.get("/api/audit", headers=ops)).json()
    assert cleared.status_code == 200
    assert cleared.json()["mode"] == "full"
    assert cleared.json()["override"] is None
    actions = [entry["action"] for entry in audit["items"]]
    assert actions[:2] == ["mode.override_clear", "mode.override"]


async def test_only_operators_may_set_the_mode(server: Server) -> None:
    tenant_admin = server.auth(await server.key("acme"))
    with trio.fail_after(10):
        refused = await server.client.post(
            "/system/mode", json={"mode": "offline", "reason": "x"}, headers=tenant_admin
        )
        bad = await server.client.post(
            "/system/mode",
            json={"mode": "sleepy", "reason": "x"},
            headers=server.auth(await server.operator()),
        )
    assert refused.status_code == 403
    assert_problem(bad, 422, "validation_failed")
    assert server.services.context.mode.mode.value == "full"


async def test_mode_changes_are_events_on_the_local_feed(server: Server) -> None:
    seen: list[Any] = []

    async def sink(envelope: Any) -> None:
        if envelope.event_type == "system.mode_changed":
            seen.append(envelope.payload)

    await server.app.events.subscribe("test-modes", sink)
    with trio.fail_after(10):
        await override(server, "read_only")
        await override(server, "full")
    assert [(e.from_mode, e.to_mode) for e in seen] == [
        ("full", "read_only"),
        ("read_only", "full"),
    ]
    assert seen[0].reasons == ["override"]
    assert seen[0].node == server.services.context.get(ModeControl).node_id


# ------------------------------------------------------------------ the store breaker


async def test_while_the_store_cannot_be_read_reads_answer_their_last_good_copy(
    server: Server,
) -> None:
    key = server.auth(await server.key("acme"))
    breakers = server.services.store.breakers
    with trio.fail_after(30):
        product = await server.client.post(
            "/api/products",
            json={"sku": "MUG", "title": "Mug", "price": 900, "currency": "EUR"},
            headers=key,
        )
        url = product.headers["Location"]
        fresh = await server.client.get(url, headers=key)
        assert fresh.status_code == 200
        assert "Cache-Status" not in fresh.headers
        breakers.reads.force_open()  # what the breaker does when the database goes away
        breakers.writes.force_open()
        try:
            await server.wait_mode("read_only")
            stale = await server.client.get(url, headers=key)
            tenant = await server.client.get("/api/tenants/current", headers=key)
            never_read = await server.client.get(url.replace(url[-4:], "0000"), headers=key)
            write = await server.client.post(
                "/api/products",
                json={"sku": "CUP", "title": "Cup", "price": 900, "currency": "EUR"},
                headers=key,
            )
        finally:
            breakers.reset()
        await server.wait_mode("full")
        recovered = await server.client.get(url, headers=key)
    assert stale.status_code == 200
    assert stale.json() == fresh.json()
    assert stale.headers["ETag"] == fresh.headers["ETag"]
    assert re.fullmatch(
        r"triotok; hit; ttl=-?\d+; detail=store-unavailable", stale.headers["Cache-Status"]
    )
    assert "detail=store-unavailable" in stale.headers["Cache-Status"]
    assert int(stale.headers["Age"]) >= 0
    assert tenant.status_code == 200
    # A read with no copy fails fast with the store's 503, never a 500.
    assert_problem(never_read, 503, "store_unavailable")
    assert "Retry-After" in never_read.headers
    assert_problem(write, 503, "read_only")
    assert recovered.status_code == 200
    assert "Cache-Status" not in recovered.headers


async def test_a_stale_copy_is_only_answered_to_its_own_tenant(server: Server) -> None:
    acme = server.auth(await server.key("acme"))
    beta = server.auth(await server.key("beta"))
    breakers = server.services.store.breakers
    with trio.fail_after(30):
        product = await server.client.post(
            "/api/products",
            json={"sku": "MUG", "title": "Secret mug", "price": 900, "currency": "EUR"},
            headers=acme,
        )
        url = product.headers["Location"]
        assert (await server.client.get(url, headers=acme)).status_code == 200
        assert (await server.client.get(url, headers=beta)).status_code == 404
        breakers.reads.force_open()
        try:
            await server.wait_mode("read_only")
            theirs = await server.client.get(url, headers=beta)
            ours = await server.client.get(url, headers=acme)
        finally:
            breakers.reset()
    assert theirs.status_code == 503  # beta never had a copy: no cross-tenant answer
    assert "Secret mug" not in theirs.text
    assert ours.status_code == 200
    assert "Cache-Status" in ours.headers


# ------------------------------------------------------------------ flagged routes


async def put_flag(server: Server, name: str, **rules: Any) -> httpx.Response:
    response = await server.client.put(
        f"/system/flags/{name}", json=rules, headers=server.auth(await server.operator())
    )
    assert response.status_code == 200, response.text
    return response


async def test_a_flagged_route_is_404_while_its_flag_is_off(server: Server) -> None:
    acme = server.auth(await server.key("acme"))
    beta = server.auth(await server.key("beta"))
    with trio.fail_after(20):
        unknown = await server.client.get("/api/extra/beta", headers=acme)
        anonymous = await server.client.get("/api/extra/beta")
        public_off = await server.client.get("/extra/public-beta")
        await put_flag(server, "extra.beta", enabled=True, rollout=0, allow=["acme"])
        allowed = await server.client.get("/api/extra/beta", headers=acme)
        excluded = await server.client.get("/api/extra/beta", headers=beta)
        public_partial = await server.client.get("/extra/public-beta")
        await put_flag(server, "extra.beta", enabled=True, rollout=100, deny=["acme"])
        denied = await server.client.get("/api/extra/beta", headers=acme)
        everyone = await server.client.get("/api/extra/beta", headers=beta)
        public_on = await server.client.get("/extra/public-beta")
        await put_flag(server, "extra.beta", enabled=False, rollout=100)
        killed = await server.client.get("/api/extra/beta", headers=beta)
    for response in (unknown, anonymous, public_off, excluded, public_partial, denied, killed):
        assert_problem(response, 404, "route_not_found")
    # Off looks exactly like absent, also to a caller without a key.
    absent = await server.client.get("/api/extra/nothing")
    assert_problem(absent, 404, "route_not_found")
    assert allowed.status_code == everyone.status_code == public_on.status_code == 200
