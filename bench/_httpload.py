"""Load from a separate process: HTTP/1.1 keep-alive on raw trio sockets, 127.0.0.1 only.

httpx would be the bottleneck, so the client is a minimal one: ``connections``
concurrent keep-alive connections, each sending a request and reading its
answer (``Content-Length`` framing) before the next, until the deadline or
until ``limit`` requests are sent in all. A :class:`Plan` says what to send;
request ``i`` substitutes ``{v}`` in the path and body with ``values[i]``
(or, without values, with ``f"{tag}-{i}"``, so every request is unique).

Also the small process plumbing the HTTP benchmarks share: start a server
in a subprocess and read its first JSON line (:func:`python`,
:func:`first_line`), and run one load round in its own process
(:func:`load_round`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench._harness import percentiles

HOST = "127.0.0.1"


@dataclass
class Plan:
    """What one load round sends (JSON-serialisable, handed to the load process)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    values: list[str] | None = None  # one request per value, in order
    tag: str = "r"  # without values: {v} becomes f"{tag}-{i}"
    limit: int | None = None  # at most this many requests in the round
    expect: int = 200  # any other status counts as an error
    collect_location: bool = False  # report the Location header of every answer

    def request(self, port: int, i: int) -> bytes:
        value = self.values[i] if self.values is not None else f"{self.tag}-{i}"
        body = b"" if self.body is None else self.body.replace("{v}", value).encode()
        lines = [
            f"{self.method} {self.path.replace('{v}', value)} HTTP/1.1",
            f"Host: {HOST}:{port}",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body is not None or self.method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def total(self) -> int | None:
        if self.values is None:
            return self.limit
        return len(self.values) if self.limit is None else min(self.limit, len(self.values))


def _header(head: bytes, name: bytes) -> bytes | None:
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def load(port: int, plan: Plan, connections: int, seconds: float) -> dict[str, Any]:
    """Send ``plan`` to 127.0.0.1:port; count, elapsed time, p50/p99 latency (s), errors."""
    import trio

    assert HOST == "127.0.0.1"
    latencies: list[float] = []
    locations: list[str] = []
    errors: list[str] = []
    total = plan.total()
    expect = f"HTTP/1.1 {plan.expect} ".encode()
    sent = 0

    async def one_connection(deadline: float) -> None:
        nonlocal sent
        stream = await trio.open_tcp_stream(HOST, port)
        buffer = b""
        async with stream:
            while time.perf_counter() < deadline and (total is None or sent < total):
                request = plan.request(port, sent)
                sent += 1
                started = time.perf_counter()
                await stream.send_all(request)
                while True:
                    head_end = buffer.find(b"\r\n\r\n")
                    if head_end >= 0:
                        head = buffer[:head_end].lower()
                        length = int(_header(head, b"content-length") or b"0")
                        end = head_end + 4 + length
                        if len(buffer) >= end:
                            if not buffer.startswith(expect):
                                errors.append(buffer[:end].decode(errors="replace")[:500])
                            elif plan.collect_location:
                                location = _header(head, b"location")
                                if location is not None:
                                    # Lower-cased with the head: fine for a path of UUIDs.
                                    locations.append(location.decode())
                            buffer = buffer[end:]
                            break
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    buffer += chunk
                latencies.append(time.perf_counter() - started)

    async def run() -> None:
        deadline = time.perf_counter() + seconds
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(one_connection, deadline)

    started = time.perf_counter()
    trio.run(run)
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies, 50, 99)
    return {
        "count": len(latencies),
        "elapsed": elapsed,
        "p50": p50,
        "p99": p99,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "locations": locations,
    }


def _load_main(port: str, plan: str, connections: str, seconds: str) -> None:
    """Entry point of the load process: arguments as strings, the result as JSON on stdout."""
    result = load(int(port), Plan(**json.loads(plan)), int(connections), float(seconds))
    print(json.dumps(result))


# ------------------------------------------------------------------ process plumbing


def python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """``python -c code args...`` from the repository root, stdout piped as text."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        **kwargs,
    )


def first_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON object a benchmark server prints once it is ready."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("a benchmark server exited before it was ready")
    result: dict[str, Any] = json.loads(line)
    return result


def load_round(port: int, plan: Plan, connections: int, seconds: float) -> dict[str, Any]:
    """One round of :func:`load` in its own process (the servers' CPU stays theirs)."""
    code = "import sys, bench._httpload as h; h._load_main(*sys.argv[1:])"
    proc = python(code, str(port), json.dumps(asdict(plan)), str(connections), str(seconds))
    out, _ = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the load process failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


def stop(*procs: subprocess.Popen[str] | None) -> None:
    """Kill the benchmark's own server processes and reap them."""
    for proc in procs:
        if proc is not None:
            proc.kill()
            proc.wait()
