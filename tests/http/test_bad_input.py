"""Bad input of every kind is answered with the right problem, never a 500 or a trace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server, ServerFactory

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "request_id"} <= body.keys()
    assert "Traceback" not in response.text
    return body


async def test_unknown_route_and_method(server: Server) -> None:
    with trio.fail_after(10):
        assert_problem(await server.client.get("/nope"), 404, "route_not_found")
        assert_problem(await server.client.get("/api/tenants/a/b/c"), 404, "route_not_found")
        response = await server.client.delete("/live")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b'{"id": NaN, "name": "x"}', "application/json", 400, "invalid_json"),
        (b'{"id": "x", "name": "y"}', "text/plain", 415, "unsupported_media_type"),
        (b"id=x&name=y", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 422, "validation_failed"),
        (b'{"id": 7, "name": "x"}', "application/json", 422, "validation_failed"),
        (b'{"id": "x"}', "application/json", 422, "validation_failed"),
        (b'{"id": "x", "name": "y", "admin": true}', "application/json", 422, "validation_failed"),
        (b'{"id": "../etc", "name": "y"}', "application/json", 422, "validation_failed"),
        (b'{"id": "current", "name": "y"}', "application/json", 400, "invalid_tenant_id"),
        (b'{"id": "x", "name": ""}', "application/json", 422, "validation_failed"),
        (b'{"id": "x", "name": true}', "application/json", 422, "validation_failed"),
        (b"[" * 100_000, "application/json", 400, "invalid_json"),
    ],
)
async def test_bad_bodies(
    server: Server, content: bytes, content_type: str, status: int, code: str
) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": content_type}
    with trio.fail_after(10):
        response = await server.client.post("/api/tenants", content=content, headers=headers)
    body = assert_problem(response, status, code)
    if code == "validation_failed":
        assert body["errors"]


async def test_validation_errors_name_the_fields(server: Server) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.post(
            "/api/tenants", json={"id": "bad id!", "name": 5, "extra": 1}, headers=headers
        )
    body = assert_problem(response, 422, "validation_failed")
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"/id", "/name", "/extra"}


async def test_huge_bodies_are_refused(make_server: ServerFactory) -> None:
    async with make_server(max_body_bytes=1024) as server:
        headers = server.auth(await server.operator())
        big = json.dumps({"id": "big", "name": "x" * 5000})
        with trio.fail_after(10):
            declared = await server.client.post(
                "/api/tenants", content=big, headers={**headers, "Content-Type": "application/json"}
            )
            assert_problem(declared, 413, "payload_too_large")

            async def chunks() -> AsyncIterator[
                bytes
            ]:  # no Content-Length: the limit applies while streaming
                for _ in range(10):
                    yield b"x" * 500

            streamed = await server.client.post(
                "/api/tenants",
                content=chunks(),
                headers={**headers, "Content-Type": "application/json"},
            )
        assert_problem(streamed, 413, "payload_too_large")


@pytest.mark.parametrize(
    "tenant", ["../x", "a b", "a" * 65, "x;drop", "é", "a/b", "%2e%2e", "", "a.b"]
)
async def test_bad_tenant_ids_in_the_header(server: Server, tenant: str) -> None:
    key = await server.key("alpha", "viewer")
    with trio.fail_after(10):
        response = await server.client.get(
            "/api/tenants/current",
            headers={"Authorization": f"Bearer {key}", "X-Tenant": tenant.encode()},
        )
    assert_problem(response, 400, "invalid_tenant_id")


@pytest.mark.parametrize("tenant", ["a.b", "a" * 65, "x;drop", "%C3%A9", "a%20b", "..."])
async def test_bad_tenant_ids_in_the_path(server: Server, tenant: str) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get(f"/api/tenants/{tenant}", headers=headers)
    assert_problem(response, 400, "invalid_tenant_id")


@pytest.mark.parametrize(
    ("query", "code"),
    [("limit=abc", "invalid_query"), ("limit=0", "invalid_query"), ("after=../x", "invalid_query")],
)
async def test_bad_query_parameters(server: Server, query: str, code: str) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get(f"/api/tenants?{query}", headers=headers)
    assert_problem(response, 400, code)


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ttk_short", "Token abc", "bearer a b"]
)
async def test_malformed_authorization(server: Server, authorization: str) -> None:
    with trio.fail_after(10):
        response = await server.client.get(
            "/api/tenants/current", headers={"Authorization": authorization}
        )
    assert response.status_code == 401
    assert response.json()["code"] in ("invalid_api_key", "invalid_authorization")


async def test_a_forged_key_with_a_real_id_is_refused(server: Server) -> None:
    real = await server.key("alpha", "admin")
    forged = real[:-5] + ("AAAAA" if not real.endswith("AAAAA") else "BBBBB")
    with trio.fail_after(10):
        response = await server.client.get("/api/tenants/current", headers=server.auth(forged))
    assert_problem(response, 401, "invalid_api_key")


async def test_bugs_answer_500_without_details(server: Server) -> None:
    """A handler that raises an unexpected error: 500 internal_error, nothing leaked."""
    from triotok.http import Route, create_app

    async def broken(call: object) -> dict[str, str]:
        raise RuntimeError("secret database password in a message")

    app = create_app(server.services, [Route("GET", "/broken", broken, "x", "t", None)])
    client = app.test_client()
    response = await client.get("/broken")
    assert response.status_code == 500
    body = await response.get_json()
    assert body["code"] == "internal_error"
    assert "secret" not in json.dumps(body)
