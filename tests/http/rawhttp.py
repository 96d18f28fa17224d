"""Raw-socket HTTP/1.1 helpers for the connection tests (only ever to 127.0.0.1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import trio

HOST = "127.0.0.1"

#: The headers every response must carry (``triotok.http.SECURITY_HEADERS``, lowercased).
SECURITY = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "cache-control",
)


@dataclass
class Reply:
    """What the server wrote on a connection, and whether it closed it."""

    data: bytes
    closed: bool

    @property
    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1])

    @property
    def headers(self) -> dict[str, str]:
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1]

    def json(self) -> Any:
        return json.loads(self.body)


async def read_until_closed(stream: trio.SocketStream, seconds: float) -> Reply:
    """Everything the server sends within ``seconds``; ``closed`` if it closed the connection."""
    data = b""
    with trio.move_on_after(seconds):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset by the server: closed too
                return Reply(data, True)
            if not chunk:
                return Reply(data, True)
            data += chunk
    return Reply(data, False)


async def read_response(stream: trio.SocketStream, seconds: float) -> bytes:
    """One complete response with a ``content-length`` (raises on timeout or EOF)."""
    data = b""
    with trio.fail_after(seconds):
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head = data[:end].lower()
                start = head.find(b"content-length:")
                length = 0
                if start >= 0:
                    start += len(b"content-length:")
                    stop = head.find(b"\r\n", start)
                    length = int(head[start : stop if stop >= 0 else None])
                if len(data) >= end + 4 + length:
                    return data[: end + 4 + length]
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("closed before a complete response")
            data += chunk


async def get_live(port: int, seconds: float = 10.0) -> int:
    """A normal client: ``GET /live`` on a fresh connection; its status."""
    with trio.fail_after(seconds):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(b"GET /live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = await read_response(stream, seconds)
    return Reply(data, True).status
