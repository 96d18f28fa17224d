"""The gateway's direct lane answers exactly as the Quart lane does.

``create_app`` serves bodiless ``GET``s of parameterless routes in the
gateway itself (issue 19: the framework's request and response objects cost
more than TrioToK's whole pipeline). Every such route, with every kind of
caller, is sent through an app with the lane and one without it, over ASGI
in-process on the same running node, and the answers must be identical:
status, every header, and the body (minus the fields that are different on
every call by nature: clocks and counters of live statistics).

Over real sockets the rest of the suite exercises the direct lane anyway,
since it is on by default.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from triotok.http import create_app
from triotok.http._app import _direct_routes

from .conftest import Server

pytestmark = pytest.mark.trio

#: Routes whose JSON bodies hold live figures (uptime, counters, timings): compared by keys.
LIVE = ("/health", "/ready", "/system", "/metrics")


async def _call(app: Any, path: str, headers: dict[str, str], query: bytes = b"") -> Any:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    sent: list[dict[str, Any]] = []
    done = trio.Event()
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    with trio.fail_after(10):
        await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    # The tokens left depend on when each lane's own limiter was hit: the header must be
    # there, its policy identical, its count is the clock's.
    headers = [(k, b"<tokens>" if k == b"ratelimit" else v) for k, v in start["headers"]]
    return start["status"], sorted(headers), body


def _headers(path: str, headers: list[tuple[bytes, bytes]]) -> Any:
    if not path.startswith(LIVE):
        return headers
    return [(k, b"<length>" if k == b"content-length" else v) for k, v in headers]


def _comparable(path: str, body: bytes) -> Any:
    if not path.startswith(LIVE):
        return body
    try:
        value = json.loads(body)
    except ValueError:
        return len(body) > 0  # a live text page (metrics): both non-empty
    return sorted(value) if isinstance(value, dict) else type(value).__name__


async def test_every_direct_route_answers_as_through_quart(server: Server) -> None:
    services = server.services
    routes = _direct_routes(services.routes)
    assert "/api/tenants/current" in routes  # the hot read this lane is for
    assert all("<" not in path for path in routes)
    direct, quart = create_app(services), create_app(services, direct=False)
    await quart.startup()
    await direct.startup()
    admin = await server.key("lane-a")
    viewer = await server.key("lane-a", "viewer")
    operator = await server.operator()
    await server.tenant("lane-b")
    callers = {
        "anonymous": {},
        "admin": server.auth(admin),
        "viewer": server.auth(viewer),
        "other tenant": server.auth(admin, "lane-b"),
        "operator": server.auth(operator),
        "operator for a tenant": server.auth(operator, "lane-a"),
        "bad key": {"Authorization": "Bearer tt_nope"},
        "bad scheme": {"Authorization": "Basic abc"},
        "bad tenant id": server.auth(admin, "Not A Tenant"),
        "non-utf8 tenant": {"Authorization": f"Bearer {admin}", "X-Tenant": "caf\xe9"},
    }
    compared = 0
    for path in sorted(routes):
        for who, headers in callers.items():
            headers = {**headers, "X-Request-Id": f"lane-{compared}"}
            ours = await _call(direct, path, headers)
            theirs = await _call(quart, path, headers)
            context = f"GET {path} as {who}"
            assert ours[0] == theirs[0], context
            assert _headers(path, ours[1]) == _headers(path, theirs[1]), context
            assert _comparable(path, ours[2]) == _comparable(path, theirs[2]), context
            compared += 1
    assert compared == len(routes) * len(callers)


async def test_the_lane_leaves_everything_else_to_quart(server: Server) -> None:
    """Parameters, HEAD, a query the route rejects, unknown paths: same answers."""
    services = server.services
    direct, quart = create_app(services), create_app(services, direct=False)
    await quart.startup()
    await direct.startup()
    auth = {**server.auth(await server.key("lane-c")), "X-Request-Id": "lane"}
    for path, query in (
        ("/api/tenants/current/", b""),
        ("/api/nope", b""),
        ("/api/content/nodes", b"limit=0"),
        ("/api/content/nodes", b"limit=2"),
        ("/api/tenants/lane-c", b""),
    ):
        ours = await _call(direct, path, auth, query)
        theirs = await _call(quart, path, auth, query)
        assert ours == theirs, (path, query)


async def test_the_service_mode_gate_applies_in_both_lanes(server: Server) -> None:
    """The gate is part of the shared pipeline: offline, the direct lane refuses a
    normal read (a product list) with the same 503 as Quart, and still answers the
    critical ones (the caller's tenant) and health."""
    services = server.services
    direct, quart = create_app(services), create_app(services, direct=False)
    await quart.startup()
    await direct.startup()
    admin = server.auth(await server.key("lane-d"))
    operator = server.auth(await server.operator())
    with trio.fail_after(30):
        set_mode = await server.client.post(
            "/system/mode",
            json={"mode": "offline", "reason": "lane test", "expires_in": 60},
            headers=operator,
        )
        assert set_mode.status_code == 200, set_mode.text
        await server.wait_mode("offline")
        try:
            for path in sorted(_direct_routes(services.routes)):
                for headers in (admin, operator):
                    headers = {**headers, "X-Request-Id": "lane-mode"}
                    ours = await _call(direct, path, headers)
                    theirs = await _call(quart, path, headers)
                    assert ours[0] == theirs[0], path
                    assert _headers(path, ours[1]) == _headers(path, theirs[1]), path
                    assert _comparable(path, ours[2]) == _comparable(path, theirs[2]), path
            status, headers, body = await _call(direct, "/api/products", admin)
            assert status == 503
            assert json.loads(body)["code"] == "offline"
            assert any(name == b"retry-after" for name, _ in headers)
            tenant, _, _ = await _call(direct, "/api/tenants/current", admin)
            assert tenant == 200
            health, _, _ = await _call(direct, "/live", {})
            assert health == 200
        finally:
            await server.client.delete("/system/mode", headers=operator)
            await server.wait_mode("full")
