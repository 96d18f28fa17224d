"""Security headers on every response, request ids, trace context and rate limits."""

from __future__ import annotations

import math

import httpx
import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from triotok.app import route_table
from triotok.http import SECURITY_HEADERS
from triotok.http._system_page import PAGE_CSP
from triotok.http._system_page import ROUTES as PAGE_ROUTES

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def assert_secure(response: httpx.Response) -> None:
    expected = dict(SECURITY_HEADERS)
    if response.request.url.path in {route.path for route in PAGE_ROUTES}:
        # The operators' page loads its own script and style and fetches this origin only.
        expected["Content-Security-Policy"] = PAGE_CSP
    for name, value in expected.items():
        assert response.headers.get(name) == value, (name, response.request.url)
    assert "X-Request-Id" in response.headers


async def test_security_headers_on_every_response(server: Server) -> None:
    ops = server.auth(await server.operator())
    with trio.fail_after(30):
        for route in route_table():
            url = route.path.replace("<tenant_id>", "ops").replace("<key_id>", "0" * 16)
            for headers in ({}, ops):
                response = await server.client.request(route.method, url, headers=headers)
                assert_secure(response)
        for method, url in (("GET", "/nope"), ("PUT", "/live"), ("GET", "/api/tenants/x.y")):
            assert_secure(await server.client.request(method, url))
        assert "Strict-Transport-Security" not in (await server.client.get("/live")).headers


async def test_hsts_only_behind_tls(make_server: ServerFactory) -> None:
    # X-Forwarded-Proto counts only from a trusted proxy (issue 9: see test_hardening).
    async with make_server(trust_proxy=True) as server:
        with trio.fail_after(10):
            response = await server.client.get("/live", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_request_ids_are_echoed_or_generated(server: Server) -> None:
    with trio.fail_after(10):
        given = await server.client.get("/live", headers={"X-Request-Id": "abc-123"})
        made = await server.client.get("/live", headers={"X-Request-Id": "bad id\twith spaces"})
        problem = await server.client.get("/nope", headers={"X-Request-Id": "req-9"})
    assert given.headers["X-Request-Id"] == "abc-123"
    assert made.headers["X-Request-Id"] != "bad id\twith spaces"
    assert len(made.headers["X-Request-Id"]) == 32
    assert problem.headers["X-Request-Id"] == "req-9"
    assert problem.json()["request_id"] == "req-9"


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (TRACEPARENT, True),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("garbage", False),
    ],
)
def test_traceparent_is_validated(header: str, kept: bool) -> None:
    from triotok.http._middleware import traceparent_from

    assert (traceparent_from(header) == header) is kept


async def test_rate_limit_per_ip(make_server: ServerFactory) -> None:
    async with make_server(rate_limit_per_ip=5) as server:
        with trio.fail_after(10):
            responses = [await server.client.get("/live") for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    first, last = responses[0], responses[-1]
    assert first.headers["RateLimit-Policy"] == '"ip";q=5;w=60'
    assert first.headers["RateLimit"].startswith('"ip";r=4;t=')
    assert last.json()["code"] == "rate_limited"
    assert last.headers["content-type"] == "application/problem+json"
    # 5 per minute: the next token arrives 12 s after the first request.
    assert 1 <= int(last.headers["Retry-After"]) <= math.ceil(60 / 5)
    assert last.headers["RateLimit"].startswith('"ip";r=0;')
    assert_secure(last)


async def test_rate_limit_per_key(make_server: ServerFactory) -> None:
    async with make_server(rate_limit_per_key=3) as server:
        key = await server.key("alpha", "viewer")
        other = await server.key("beta", "viewer")
        with trio.fail_after(10):
            statuses = [
                (await server.client.get("/api/tenants/current", headers=server.auth(key)))
                for _ in range(4)
            ]
            fresh = await server.client.get("/api/tenants/current", headers=server.auth(other))
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert '"key";q=3;w=60' in limited.headers["RateLimit-Policy"]
    assert '"ip";' in limited.headers["RateLimit-Policy"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert fresh.status_code == 200  # another key has its own bucket
