"""Clients that try to exhaust a real ``triotok serve`` process (issue 9, point 1).

Each test starts the server as a subprocess on 127.0.0.1, plays a bounded
number of hostile connections against it, checks that a normal client is
answered meanwhile and that every hostile connection is closed by the server
within a bound. Waiting is done on socket reads with timeouts, never sleeps.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.rawhttp import HOST, Reply, get_live, read_response, read_until_closed

pytestmark = pytest.mark.slow

CODE = "import sys; from triotok.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class Served:
    process: trio.Process
    port: int
    banner: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _limit_descriptors(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@asynccontextmanager
async def _serve(
    tmp_path: Path, *args: str, fd_limit: int | None = None, **settings: object
) -> AsyncIterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
    env.update({f"TRIOTOK_{k.upper()}": str(v) for k, v in settings.items()})
    env.setdefault("TRIOTOK_RATE_LIMIT_PER_IP", "100000")
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-c",
                CODE,
                "serve",
                "--port",
                "0",
                "--store",
                f"sqlite:///{tmp_path}/t.db",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
            env=env,
            preexec_fn=None if fd_limit is None else _limit_descriptors(fd_limit),
        )
    try:
        assert process.stdout is not None
        banner = b""
        with trio.fail_after(30):
            while b"serving on" not in banner or ("--demo" in args and b"/openapi" not in banner):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, "the server exited before announcing itself"
                banner += chunk
        found = re.search(rb"serving on http://127\.0\.0\.1:(\d+)", banner)
        assert found is not None
        yield Served(process, int(found[1]), banner.decode(), log)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(10):
            await process.wait()


async def _open(port: int, data: bytes = b"") -> trio.SocketStream:
    stream = await trio.open_tcp_stream(HOST, port)
    if data:
        await stream.send_all(data)
    return stream


async def _all_closed(streams: list[trio.SocketStream], seconds: float) -> list[Reply]:
    """Wait (reading) until the server closes each stream, at most ``seconds`` each."""
    replies = []
    for stream in streams:
        replies.append(await read_until_closed(stream, seconds))
        await stream.aclose()
    return replies


async def test_slowloris_heads_are_cut_off_while_others_are_served(tmp_path: Path) -> None:
    async with _serve(tmp_path, keep_alive_timeout=2) as server:
        with trio.fail_after(60):
            slow = [
                await _open(server.port, b"GET /live HTTP/1.1\r\nHost: t\r\nX-A: ")
                for _ in range(40)
            ]
            assert await get_live(server.port) == 200
            # Dribbling more of the head does not extend the deadline.
            for stream in slow[:10]:
                await stream.send_all(b"a")
            replies = await _all_closed(slow, 10)
    assert all(r.closed and r.data == b"" for r in replies)


async def test_slow_bodies_get_408_while_others_are_served(tmp_path: Path) -> None:
    async with _serve(tmp_path, "--demo", body_timeout=2) as server:
        key = re.search(r"demo admin key .*: (ttk_\S+)", server.banner)
        assert key is not None
        head = (
            "POST /api/keys HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key[1]}\r\nContent-Length: 100\r\n\r\n{{"
        ).encode()
        with trio.fail_after(60):
            slow = [await _open(server.port, head) for _ in range(20)]
            assert await get_live(server.port) == 200
            # One body trickles a byte per half second: the limit is on the whole body.
            trickled = Reply(b"", False)
            while not trickled.closed:
                with contextlib.suppress(trio.BrokenResourceError):
                    await slow[0].send_all(b" ")
                part = await read_until_closed(slow[0], 0.5)
                trickled = Reply(trickled.data + part.data, part.closed)
            await slow[0].aclose()
            replies = [trickled, *await _all_closed(slow[1:], 10)]
    for reply in replies:
        assert reply.closed
        assert reply.status == 408
        assert reply.json()["code"] == "request_timeout"


async def test_idle_keep_alive_clients_are_closed_while_others_are_served(tmp_path: Path) -> None:
    async with _serve(tmp_path, keep_alive_timeout=2) as server:
        with trio.fail_after(60):
            idle = []
            for _ in range(40):
                stream = await _open(server.port, b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
                assert Reply(await read_response(stream, 10), False).status == 200
                idle.append(stream)
            assert await get_live(server.port) == 200
            replies = await _all_closed(idle, 10)
    assert all(r.closed and r.data == b"" for r in replies)


async def test_one_client_cannot_exhaust_the_descriptors(tmp_path: Path) -> None:
    """With 256 descriptors, the cap is 192 (64 kept in reserve): 240 connections get no EMFILE."""
    async with _serve(tmp_path, fd_limit=256, keep_alive_timeout=3) as server:
        with trio.fail_after(90):
            held, answers = [], []
            for _ in range(240):
                stream = await _open(server.port, b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
                answers.append(Reply(await read_response(stream, 10), False))
                held.append(stream)
            statuses = [a.status for a in answers]
            assert statuses.count(200) == 192
            assert statuses.count(503) == 48
            refused = next(a for a in answers if a.status == 503)
            assert refused.json()["code"] == "too_many_connections"
            assert refused.headers["retry-after"] == "1"
            # At the cap a newcomer is refused at once, not queued.
            with trio.fail_after(5):
                assert await get_live(server.port) == 503
            # The held connections idle out; then a normal client is served again.
            replies = await _all_closed(held, 10)
            assert all(r.closed for r in replies)
            assert await get_live(server.port) == 200
        log = server.log_text()
    assert "Traceback" not in log
    assert "EMFILE" not in log
    assert "Too many open files" not in log
    assert "max_connections lowered to 192" in log
    assert 1 <= log.count("refused a connection") <= 3


async def test_sigterm_does_not_wait_for_idle_connections(tmp_path: Path) -> None:
    async with _serve(tmp_path, keep_alive_timeout=60, graceful_timeout=60) as server:
        with trio.fail_after(60):
            idle = []
            for _ in range(10):
                stream = await _open(server.port, b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
                await read_response(stream, 10)
                idle.append(stream)
            idle.append(await _open(server.port, b"GET /live HTTP/1.1\r\n"))
            server.process.send_signal(signal.SIGTERM)
            with trio.fail_after(15):  # well under the 60 s graceful timeout
                assert await server.process.wait() == 0
            replies = await _all_closed(idle, 5)
    assert all(r.closed for r in replies)
