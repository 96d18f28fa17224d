"""The connection layer: connections end, and hypercorn's own answers are problems too.

Issue 9, points 1 and 8. With hypercorn 0.18 and quart-trio 0.12 the server
kept every connection open after the app's answer (``Connection: close``,
HTTP/1.0 and idle keep-alive alike); hypercorn's own 400/431/501 answers had
no security headers and no body, and a slow body got 408 ``http_error``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from tests.http.rawhttp import HOST, SECURITY, Reply, read_response, read_until_closed


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


@pytest.fixture
async def quick(make_server: ServerFactory) -> AsyncIterator[Server]:
    """A server with short connection timeouts."""
    async with make_server(keep_alive_timeout=1.0, body_timeout=1.0) as running:
        yield running


def _port(server: Server) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


async def _exchange(server: Server, request: bytes, seconds: float = 5.0) -> Reply:
    stream = await trio.open_tcp_stream(HOST, _port(server))
    async with stream:
        await stream.send_all(request)
        return await read_until_closed(stream, seconds)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /live HTTP/1.0\r\n\r\n",
        b"GET /live HTTP/1.0\r\nConnection: close\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0", "http-1.0-close"],
)
async def test_the_server_closes_after_the_response(server: Server, request_bytes: bytes) -> None:
    with trio.fail_after(10):
        reply = await _exchange(server, request_bytes)
    assert reply.status == 200
    assert reply.closed, "the connection stayed open after the response"


async def test_an_idle_keep_alive_connection_closes_after_the_timeout(quick: Server) -> None:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(HOST, _port(quick))
        async with stream:
            for _ in range(3):  # the connection is reused until it idles
                await stream.send_all(b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
                assert Reply(await read_response(stream, 5), False).status == 200
            reply = await read_until_closed(stream, 5)
    assert reply.closed
    assert reply.data == b""


async def test_an_incomplete_request_head_is_cut_off(quick: Server) -> None:
    with trio.fail_after(10):
        reply = await _exchange(quick, b"GET /live HTTP/1.1\r\nHost: t\r\nX-Slow: a", 5)
    assert reply.closed
    assert reply.data == b""


async def test_a_slow_body_gets_408_request_timeout(quick: Server) -> None:
    ops = quick.auth(await quick.operator())
    head = "".join(f"{k}: {v}\r\n" for k, v in ops.items())
    request = (
        "POST /api/keys HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: 40\r\n{head}\r\n{{"
    ).encode()
    with trio.fail_after(10):
        reply = await _exchange(quick, request, 5)
    assert reply.status == 408
    assert reply.json()["code"] == "request_timeout"
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.closed


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /live HTTP/1.1\r\nHost: t\r\nX-Bad: a\x00b\r\n\r\n", 400, "bad_request"),
        (b"GET /live HTTP/1.1\r\nHost: t\r\nX-Bad: a\rb\r\n\r\n", 400, "bad_request"),
        (b"GET /live HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n", 400, "bad_request"),
        (b"POST /live HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400, "bad_request"),
        (
            b"POST /live HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "bad_request",
        ),
        (b"GET /live HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 20_000, 431, "headers_too_large"),
        (
            b"POST /live HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not_implemented",
        ),
    ],
    ids=["request-line", "nul", "cr", "header-line", "content-length", "chunk", "431", "501"],
)
async def test_server_level_errors_are_problems_with_security_headers(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    with trio.fail_after(10):
        reply = await _exchange(server, request_bytes)
    assert reply.status == status
    headers = reply.headers
    for name in SECURITY:
        assert name in headers, name
    assert headers["content-type"] == "application/problem+json"
    assert "x-request-id" in headers
    problem = reply.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert reply.closed
