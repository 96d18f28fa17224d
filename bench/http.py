"""HTTP: an authenticated, tenant-scoped GET served from the cache vs bare quart-trio and raw ASGI.

Side by side in one run, on the same hypercorn settings
(``triotok.http.hypercorn_config``), each server in its own process:

* **triotok**: ``triotok serve`` (one worker) on a SQLite file; ``GET
  /api/tenants/current`` with an API key and ``X-Tenant`` goes through the
  full pipeline (request id, trace context, per-IP and per-key rate limits,
  key and tenant from their caches, authorisation, security headers);
* **triotok x2**: the same with ``--workers 2`` (SO_REUSEPORT);
* **bare**: a quart-trio app whose only handler returns the same JSON body;
* **raw ASGI**: a plain ASGI callable returning the same bytes on hypercorn,
  the floor under both.

Load comes from an external generator so it does not compete with the
servers for an interpreter: ``wrk -t1 -c32`` when ``wrk`` is installed
(Debian's ``wrk``; ``oha`` is not used), else the minimal keep-alive client
of ``bench._httpload`` in its own process. Only 127.0.0.1. Rounds alternate
between the servers; each figure is the median of the rounds (every round is
kept in the JSON). Budgets (issue 19): triotok >= 0.90x bare requests/s; its
p99 at most 1.2x bare's; two workers >= 1.7x one.

Also: idle RSS of ``triotok serve`` (budget < 80 MB) and the time from
starting the process to the first ``/ready`` 200 (budget < 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._harness import Report, Row, progress
from bench._httpload import HOST, Plan, first_line, load_round, python, stop

CONNECTIONS = 32
SECONDS = 8.0
ROUNDS = 5
PATH = "/api/tenants/current"


# ------------------------------------------------------------------ the servers (subprocesses)


def _seed(store_dir: str) -> None:
    """Create the bench tenant and a viewer key in a SQLite file; print ``key`` and ``body``."""
    import trio

    from triotok.app import open_application
    from triotok.config import load_settings
    from triotok.modules.access import ApiKeyRepository, Role
    from triotok.modules.tenants import TenantRepository

    async def run() -> None:
        settings = load_settings(
            flags={
                "port": 0,
                "store_url": f"sqlite:///{store_dir}/bench.db",
                "log_level": "warning",
            }
        )
        async with open_application(settings) as app:
            services = app.services
            await services.context.get(TenantRepository).create("bench", "Bench", actor="bench")
            _, key = await services.context.get(ApiKeyRepository).create(
                "bench", Role.VIEWER, actor="bench"
            )
            tenant = await services.tenants.get("bench")
            assert tenant is not None
            body = json.dumps(tenant.as_dict(), separators=(",", ":"))
            print(json.dumps({"key": key, "body": body}), flush=True)

    trio.run(run)


def _serve_triotok(
    store_dir: str, workers: int, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """``triotok serve`` on the seeded file, limits out of the way; wait until ready.

    ``settings``: more ``TRIOTOK_*`` variables (``bench/telemetry.py`` turns
    telemetry on and off with them).
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
    env.update(TRIOTOK_RATE_LIMIT_PER_IP=str(10**9), TRIOTOK_RATE_LIMIT_PER_KEY=str(10**9))
    env.update(settings or {})
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "triotok"),
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{store_dir}/bench.db",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not _ready(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("triotok serve did not become ready")
        time.sleep(0.02)
    if workers > 1:
        time.sleep(1.0)  # the first worker answers /ready before its siblings listen
    return proc, port


def _serve_bare(body: str) -> None:
    """A quart-trio app returning ``body``, on the same hypercorn settings."""
    import trio
    from quart import Response
    from quart_trio import QuartTrio

    app = QuartTrio("bare", static_folder=None)
    payload = body.encode()

    @app.get(PATH)
    async def current() -> Response:
        return Response(payload, content_type="application/json")

    trio.run(_hypercorn, app)


def _serve_raw(body: str) -> None:
    """A plain ASGI callable returning ``body``: what hypercorn alone costs."""
    import trio

    payload = body.encode()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
    }
    done = {"type": "http.response.body", "body": payload}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(done)

    trio.run(_hypercorn, app)


async def _hypercorn(app: Any) -> None:
    from hypercorn.trio import serve

    from triotok.http import HttpOptions, bind_socket, hypercorn_config

    sock = bind_socket(HOST, 0)
    port = sock.getsockname()[1]
    config = hypercorn_config(HttpOptions(host=HOST, port=port), sock)

    class Started:
        def started(self, value: Any = None) -> None:
            print(json.dumps({"port": port}), flush=True)

    await serve(app, config, task_status=Started())


def _terminate(*procs: subprocess.Popen[str]) -> None:
    """SIGTERM (``triotok serve --workers`` forwards it to its workers), then wait."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(proc)


# ------------------------------------------------------------------ load


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _wrk(port: int, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    """One ``wrk -t1 -c32 --latency`` round: rate, p50, p99 (s) and non-2xx answers."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://{HOST}:{port}{PATH}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    text = out.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if rate is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "rate": float(rate[1]),
        "p50": _seconds(p50[1]),
        "p99": _seconds(p99[1]),
        "errors": int(bad[1]) if bad else 0,
        "socket_errors": errors[0] if errors else None,
    }


def _builtin(port: int, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    result = load_round(port, Plan("GET", PATH, headers), CONNECTIONS, seconds)
    return {**result, "rate": result["count"] / result["elapsed"]}


def _throughput(report: Report, seconds: float, rounds: int) -> None:
    generator = "wrk" if shutil.which("wrk") else "built-in client"
    measure = _wrk if generator == "wrk" else _builtin
    progress(f"load generator: {generator}, {CONNECTIONS} connections, {seconds:g}s per round")
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="triotok-bench-http-") as tmp:
        try:
            seeded = python("import sys, bench.http as b; b._seed(sys.argv[1])", tmp)
            info = first_line(seeded)
            seeded.wait(timeout=60)
            auth = {"Authorization": f"Bearer {info['key']}", "X-Tenant": "bench"}
            servers: dict[str, tuple[int, dict[str, str]]] = {}
            for name, code in (("raw ASGI", "_serve_raw"), ("bare", "_serve_bare")):
                proc = python(f"import sys, bench.http as b; b.{code}(sys.argv[1])", info["body"])
                procs.append(proc)
                servers[name] = (first_line(proc)["port"], {})
            one, one_port = _serve_triotok(tmp, 1)
            procs.append(one)
            servers["triotok"] = (one_port, auth)
            two, two_port = _serve_triotok(tmp, 2)
            procs.append(two)
            servers["triotok x2"] = (two_port, auth)
            for port, headers in servers.values():  # warm-up (caches, imports)
                measure(port, headers, 1.0)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for i in range(rounds):
                for name, (port, headers) in servers.items():
                    progress(f"round {i + 1}/{rounds}: {name}")
                    result = measure(port, headers, seconds)
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['errors']} non-200 answers")
                    runs[name].append(result)
        finally:
            _terminate(*procs)
    for name in ("raw ASGI", "bare", "triotok", "triotok x2"):
        rates = [r["rate"] for r in runs[name]]
        p50 = statistics.median(r["p50"] for r in runs[name]) * 1000
        p99 = statistics.median(r["p99"] for r in runs[name]) * 1000
        report.add(
            Row(
                f"GET tenant (cached) {name}",
                statistics.median(rates),
                "req/s",
                extra={"rounds": runs[name], "generator": generator},
            )
        )
        report.add(Row(f"  p50 {name}", p50, "ms"))
        report.add(Row(f"  p99 {name}", p99, "ms"))
    ratio = report.compare("GET tenant (cached) triotok", "GET tenant (cached) bare")
    row = report.get("GET tenant (cached) triotok")
    row.budget, row.ok = ">= 0.90x bare", ratio >= 0.90
    report.compare("GET tenant (cached) bare", "GET tenant (cached) raw ASGI")
    p99 = report.compare("  p99 triotok", "  p99 bare", higher_is_better=False)
    row = report.get("  p99 triotok")
    row.budget, row.ok = ">= 0.83x (p99 <= 1.2x bare)", p99 >= 1 / 1.2
    scale = report.compare("GET tenant (cached) triotok x2", "GET tenant (cached) triotok")
    row = report.get("GET tenant (cached) triotok x2")
    row.budget, row.ok = ">= 1.7x one worker", scale >= 1.7


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.sendall(
                f"GET /ready HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
            )
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _startup(report: Report, runs: int) -> None:
    import psutil

    times: list[float] = []
    rss: list[float] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="triotok-bench-serve-") as tmp:
            port = _free_port()
            started = time.perf_counter()
            proc = subprocess.Popen(
                [
                    os.path.join(os.path.dirname(sys.executable), "triotok"),
                    "serve",
                    "--port",
                    str(port),
                    "--store",
                    f"sqlite:///{tmp}/t.db",
                    "--log-level",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp,
                env=env,
            )
            try:
                while not _ready(port):
                    if proc.poll() is not None or time.perf_counter() - started > 30:
                        raise RuntimeError("triotok serve did not become ready")
                    time.sleep(0.005)
                times.append(time.perf_counter() - started)
                for _ in range(20):
                    _ready(port)
                time.sleep(1.0)  # idle
                rss.append(psutil.Process(proc.pid).memory_info().rss / 2**20)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ready = sorted(times)[len(times) // 2]
    report.add(
        Row(
            "start -> /ready 200 (median)",
            ready,
            "s",
            budget="< 1 s",
            ok=ready < 1.0,
            extra={"runs": times},
        )
    )
    idle = max(rss)
    report.add(
        Row(
            "idle RSS of triotok serve",
            idle,
            "MB",
            budget="< 80 MB",
            ok=idle < 80,
            extra={"runs": rss},
        )
    )


def main(args: argparse.Namespace) -> Report:
    """Throughput and latency vs bare quart-trio, then start-up time and idle RSS."""
    report = Report("http: authenticated tenant GET (cached) vs bare quart-trio")
    seconds = 1.0 if args.quick else SECONDS
    rounds = 1 if args.quick else ROUNDS
    progress(f"{rounds} round(s) x {seconds:g}s per server, {CONNECTIONS} connections")
    _throughput(report, seconds, rounds)
    progress("start-up time and idle RSS of `triotok serve`")
    _startup(report, 1 if args.quick else 3)
    return report
