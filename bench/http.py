"""HTTP: an authenticated, tenant-scoped GET served from the cache vs a bare quart-trio handler.

Side by side in one run, on the same hypercorn settings
(``triotok.http.hypercorn_config``), each server in its own process:

* **triotok**: the whole application tree on a SQLite file; ``GET
  /api/tenants/current`` with an API key and ``X-Tenant`` goes through the
  full pipeline (request id, trace context, per-IP and per-key rate limits,
  key and tenant from their caches, authorisation, security headers);
* **bare**: a quart-trio app whose only handler returns the same JSON body.

Load comes from a separate process: the minimal HTTP/1.1 keep-alive client on
raw trio sockets of ``bench._httpload`` (httpx would be the bottleneck), ``CONNECTIONS`` concurrent
connections for ``SECONDS`` per round, only to 127.0.0.1. Rounds alternate
between the servers; the best round of each is kept. Budget: triotok >= 85 %
of bare requests/s.

Also: idle RSS of ``triotok serve`` (budget < 80 MB) and the time from
starting the process to the first ``/ready`` 200 (budget < 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._harness import Report, Row, progress
from bench._httpload import HOST, Plan, first_line, load_round, python, stop

CONNECTIONS = 16
SECONDS = 3.0
ROUNDS = 3


# ------------------------------------------------------------------ the two servers (subprocesses)


def _serve_triotok(store_dir: str, overrides: str = "{}") -> None:
    """Run the application on a free port; print ``port key`` once ready.

    ``overrides``: more settings, as JSON (``bench/telemetry.py`` turns telemetry on and off).
    """
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
                "rate_limit_per_ip": 10**9,
                "rate_limit_per_key": 10**9,
                "log_level": "warning",
                **json.loads(overrides),
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
            print(json.dumps({"port": app.port, "key": key, "body": body}), flush=True)
            await trio.sleep_forever()

    trio.run(run)


def _serve_bare(body: str) -> None:
    """A quart-trio app returning ``body``, on the same hypercorn settings."""
    import trio
    from hypercorn.trio import serve
    from quart import Response
    from quart_trio import QuartTrio

    from triotok.http import HttpOptions, bind_socket, hypercorn_config

    app = QuartTrio("bare", static_folder=None)
    payload = body.encode()

    @app.get("/api/tenants/current")
    async def current() -> Response:
        return Response(payload, content_type="application/json")

    async def run() -> None:
        sock = bind_socket(HOST, 0)
        port = sock.getsockname()[1]
        config = hypercorn_config(HttpOptions(host=HOST, port=port), sock)

        class Started:
            def started(self, value: Any = None) -> None:
                print(json.dumps({"port": port}), flush=True)

        await serve(app, config, task_status=Started())  # type: ignore[arg-type]

    trio.run(run)


# ------------------------------------------------------------------ orchestration


def _plan(headers: dict[str, str]) -> Plan:
    return Plan("GET", "/api/tenants/current", headers)


def _throughput(report: Report, seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="triotok-bench-http-") as tmp:
        ours = python("import sys, bench.http as b; b._serve_triotok(sys.argv[1])", tmp)
        bare = None
        try:
            info = first_line(ours)
            bare = python("import sys, bench.http as b; b._serve_bare(sys.argv[1])", info["body"])
            bare_port = first_line(bare)["port"]
            plans = {
                "triotok": (
                    info["port"],
                    _plan({"Authorization": f"Bearer {info['key']}", "X-Tenant": "bench"}),
                ),
                "bare": (bare_port, _plan({})),
            }
            for port, plan in plans.values():  # warm-up (caches, imports)
                load_round(port, plan, CONNECTIONS, 0.5)
            best: dict[str, dict[str, Any]] = {}
            for i in range(rounds):
                for name, (port, plan) in plans.items():
                    progress(f"round {i + 1}/{rounds}: {name}")
                    result = load_round(port, plan, CONNECTIONS, seconds)
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['errors']} non-200 answers")
                    rate = result["count"] / result["elapsed"]
                    if name not in best or rate > best[name]["rate"]:
                        best[name] = {**result, "rate": rate}
        finally:
            stop(ours, bare)
    for name in ("bare", "triotok"):
        r = best[name]
        report.add(
            Row(
                f"GET tenant (cached) {name}",
                r["rate"],
                "req/s",
                extra={"p50_ms": r["p50"] * 1000, "p99_ms": r["p99"] * 1000},
            )
        )
        report.add(Row(f"  p50 {name}", r["p50"] * 1000, "ms"))
        report.add(Row(f"  p99 {name}", r["p99"] * 1000, "ms"))
    ratio = report.compare("GET tenant (cached) triotok", "GET tenant (cached) bare")
    row = report.get("GET tenant (cached) triotok")
    row.budget, row.ok = ">= 0.85x bare", ratio >= 0.85


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
