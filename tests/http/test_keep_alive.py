"""Keep-alive connections survive refusals sent before the request body was read.

hypercorn 0.18 may leave the connection hanging when a response ends before
the request body was received (found by schemathesis: a 401 to a POST, then
the next request on the same connection timed out). The gateway answers such
responses with ``Connection: close``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from tests.http.conftest import Server


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


async def test_refusing_an_unread_body_closes_the_connection(server: Server) -> None:
    ops = server.auth(await server.operator())
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        with trio.fail_after(30):
            for _ in range(20):
                refused = await client.post("/api/keys", content=b"{}")
                after = await client.get("/live")
                assert refused.status_code == 401
                assert refused.headers["connection"] == "close"
                assert after.status_code == 200
            read = await client.post("/api/keys", json={"role": "viewer"}, headers=ops)
            plain = await client.get("/live")
    # A request whose body was read, or that had none, keeps its connection.
    assert read.status_code == 201
    assert "connection" not in read.headers
    assert "connection" not in plain.headers
