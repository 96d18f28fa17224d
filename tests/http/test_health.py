"""/live, /ready, /health and /openapi.json."""

from __future__ import annotations

import trio

from tests.http.conftest import Server
from triotok.app import route_table


async def test_live_ready_health(server: Server) -> None:
    with trio.fail_after(10):
        live = await server.client.get("/live")
        ready = await server.client.get("/ready")
        health = await server.client.get("/health")
    assert live.json() == {"status": "live"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    body = health.json()
    assert health.status_code == 200
    assert body["status"] == "ok"
    assert set(body["subsystems"]) >= {"tree", "store", "tenants", "access", "dead_letters"}
    assert body["subsystems"]["store"]["status"] == "up"


async def test_ready_is_503_when_a_required_actor_is_down(server: Server) -> None:
    system = server.app.system
    with trio.fail_after(10):
        await system.ref("/app/transport").stop()
        ready = await server.client.get("/ready")
        health = await server.client.get("/health")
    assert ready.status_code == 503
    assert ready.json()["code"] == "not_ready"
    assert ready.headers["content-type"] == "application/problem+json"
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    missing = health.json()["subsystems"]["tree"]["not_running"]
    assert {"path": "/app/transport", "state": "missing"} in missing


async def test_openapi_describes_every_route(server: Server) -> None:
    with trio.fail_after(10):
        response = await server.client.get("/openapi.json")
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    for route in route_table():
        operation = doc["paths"][route.openapi_path][route.method.lower()]
        assert str(route.status) in operation["responses"]
        assert "429" in operation["responses"]
        if route.permission is not None:
            assert {"401", "403"} <= operation["responses"].keys()
            assert operation["x-permission"]["resource"] == route.permission.resource
        if route.body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{route.body.__name__}"}
            assert {"413", "415", "422"} <= operation["responses"].keys()


async def test_responses_match_their_declared_schema(server: Server) -> None:
    """Every success answer of the GET routes validates against its declared response model."""
    from tests.plugins.helpers import collect, enable
    from triotok.http._models import validation_errors

    ops = server.auth(await server.operator())
    with trio.fail_after(20):
        # The first-party plugins' routes answer once a tenant switched them on.
        for plugin in ("webhooks", "seo"):
            await enable(server, plugin, "ops")
        analysed = await collect(server, "seo.analyzed")
        node = await server.client.post(
            "/api/content/nodes",
            json={"kind": "page", "translations": {"en": {"title": "T", "slug": "t"}}},
            headers=ops,
        )
        product = await server.client.post(
            "/api/products",
            json={"sku": "S-1", "title": "T", "price": 1, "currency": "EUR"},
            headers=ops,
        )
        order = await server.client.post(
            "/api/orders",
            json={"items": [{"product_id": product.json()["id"], "quantity": 1}]},
            headers=ops,
        )
        # The lists and search answer from the index: let it apply both writes.
        await server.client.get(
            "/api/products",
            params={"min_token": product.headers["X-Consistency-Token"]},
            headers=ops,
        )
        rebuild = await server.client.post("/api/search/rebuilds", json={}, headers=ops)
        await analysed.wait()  # the seo plugin has a report of the node
        params = {
            "tenant_id": "ops",
            "node_id": node.json()["id"],
            "product_id": product.json()["id"],
            "order_id": order.json()["id"],
            "rebuild_id": str(rebuild.json()["id"]),
        }
        for route in route_table():
            if route.method != "GET" or route.response is None:
                continue
            if route.path == "/system/events":
                continue  # 409 without an event stream: tests/http/test_event_stream.py
            url = route.path
            for name, value in params.items():
                url = url.replace(f"<{name}>", value)
            response = await server.client.get(url, headers=ops)
            assert response.status_code == route.status, (route.endpoint, response.text)
            if route.content_type != "application/json":  # the operators' page and its assets
                assert response.headers["content-type"].startswith(route.content_type)
                continue
            assert validation_errors(route.response, response.json()) == [], route.endpoint
