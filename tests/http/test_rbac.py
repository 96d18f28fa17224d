"""Auth and RBAC over the app's real URL map: every non-public route refuses

* a request without a key (401),
* a key of another tenant (403 or 404, and never the data),
* a key whose role lacks the route's permission (403).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from tests.http.conftest import Server
from triotok.app import route_table
from triotok.http import Route
from triotok.modules.access import Role

SAMPLE_PARAMS = {"tenant_id": "alpha", "key_id": "0123456789abcdef"}
SAMPLE_QUERY = {"/system/actors/restart": "?path=/app/tenants", "/system/actors/stop": "?path=/x/y"}


def _url(route: Route) -> str:
    path = route.path
    for name, value in SAMPLE_PARAMS.items():
        path = path.replace(f"<{name}>", value)
    return path + SAMPLE_QUERY.get(route.path, "")


def _body(route: Route) -> Any:
    if route.body is None:
        return None
    fields = msgspec.structs.fields(route.body)
    if "role" in {f.name for f in fields}:
        return {"role": "viewer"}
    if [f.name for f in fields if f.required] == ["id", "name"]:
        return {"id": "newco", "name": "NewCo"}
    return {"name": "Renamed"}


def _rules(server: Server) -> list[tuple[str, str, Route]]:
    app = server.services.app
    routes = {r.endpoint: r for r in app.config["routes"]}
    found = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            route = routes[rule.endpoint]  # KeyError: a route outside the table
            assert route.method == method
            assert route.path == rule.rule
            found.append((method, rule.rule, route))
    return found


def test_every_rule_is_declared_once() -> None:
    endpoints = [r.endpoint for r in route_table()]
    assert len(endpoints) == len(set(endpoints))


async def test_url_map_matches_the_route_table(server: Server) -> None:
    rules = _rules(server)
    assert {(m, p) for m, p, _ in rules} == {(r.method, r.path) for r in route_table()}


async def test_public_routes_need_no_key(server: Server) -> None:
    with trio.fail_after(20):
        for method, _, route in _rules(server):
            if route.public:
                response = await server.client.request(method, _url(route))
                assert response.status_code < 400, route.endpoint


async def _call(server: Server, route: Route, headers: dict[str, str]) -> Any:
    return await server.client.request(
        route.method, _url(route), headers=headers, json=_body(route)
    )


@pytest.fixture
async def tenants(server: Server) -> dict[str, str]:
    await server.tenant("alpha", "Alpha Secret Name")
    await server.tenant("beta")
    return {"alpha": "alpha", "beta": "beta"}


async def test_every_protected_route_refuses_a_request_without_a_key(
    server: Server, tenants: dict[str, str]
) -> None:
    with trio.fail_after(30):
        for _, _, route in _rules(server):
            if route.public:
                continue
            response = await _call(server, route, {"X-Tenant": "alpha"})
            assert response.status_code == 401, route.endpoint
            assert response.json()["code"] == "missing_api_key"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            bad = await _call(server, route, {"Authorization": "Bearer nope", "X-Tenant": "alpha"})
            assert bad.status_code == 401, route.endpoint


async def test_every_protected_route_refuses_a_key_of_another_tenant(
    server: Server, tenants: dict[str, str]
) -> None:
    # beta's admin has every permission a tenant key can have, on the wrong tenant.
    other = await server.key("beta", "admin")
    with trio.fail_after(30):
        for _, _, route in _rules(server):
            if route.public:
                continue
            response = await _call(server, route, server.auth(other, "alpha"))
            assert response.status_code in (403, 404), (route.endpoint, response.text)
            assert "Alpha Secret Name" not in response.text
            assert response.headers["content-type"] == "application/problem+json"


async def test_every_protected_route_refuses_a_role_lacking_its_permission(
    server: Server, tenants: dict[str, str]
) -> None:
    checked = 0
    with trio.fail_after(60):
        for _, _, route in _rules(server):
            permission = route.permission
            if permission is None:
                continue
            # Platform routes are tried with roles of the operator tenant itself.
            tenant = (
                server.app.settings.operator_tenant if permission.scope == "platform" else "alpha"
            )
            for role in Role:
                if server.services.roles.allows(role.value, permission):
                    continue
                key = await server.key(tenant, role.value)
                response = await _call(server, route, server.auth(key, tenant))
                assert response.status_code == 403, (route.endpoint, role, response.text)
                assert response.json()["code"] == "forbidden"
                checked += 1
    assert checked >= 10


async def test_an_allowed_role_gets_through(server: Server, tenants: dict[str, str]) -> None:
    viewer = await server.key("alpha", "viewer")
    with trio.fail_after(10):
        response = await server.client.get("/api/tenants/current", headers=server.auth(viewer))
    assert response.status_code == 200
    assert response.json()["id"] == "alpha"
