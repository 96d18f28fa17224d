"""Telemetry's costs, each against the same thing without it, side by side in one run.

* **Actors**: ``tell`` throughput and ``ask`` round trips on a system with
  tracing installed but sampling off (ratio 0, nothing current) against a
  plain system: ``ACTOR_ROUNDS`` pairs of adjacent rounds in one process,
  the order swapped every pair; best of each, and the median of the pairs'
  ratios, which the budget applies to (this VM's speed drifts by more than
  the cost measured, between processes and from minute to minute).
  Budget: at most 3 % slower.
* **HTTP**: the cached tenant GET of ``bench/http.py`` on three servers,
  rounds alternating: telemetry off, metrics on (the default), and tracing
  at ratio 1.0 exporting over OTLP/HTTP to a local sink that accepts every
  batch; the load from ``wrk`` when installed (as ``bench/http.py``), else
  the built-in client. ``ROUNDS`` rounds, the order rotated; each variant's
  ratio to the "off" round beside it, and the budgets on their medians:
  metrics >= 0.95x off, tracing >= 0.75x off.
  Beside each round's rate, the server process's CPU time per request,
  its children's included (the span forwarder: the OTLP encoding happens
  there), from ``/proc``, Linux only: the machine's noise moves it much less
  than it moves throughput, so its ratios show what the rates' hide. No
  budget applies to it.
* **Scrape**: rendering ``/metrics`` for a tree with 10,000 active entities
  (one region) and a tenant cache of 100 tenants. Budget: < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trio

from bench._harness import Report, Row, progress
from bench._httpload import first_line, python, stop
from bench.http import _builtin, _serve_triotok, _wrk
from triotok import Actor, open_system
from triotok.supervision import Entities
from triotok.telemetry import Telemetry, TelemetryOptions

CONNECTIONS = 16
SECONDS = 3.0
ROUNDS = 7
#: Actor rounds per variant, alternating in pairs (the budget is on the pairs' median).
ACTOR_ROUNDS = 9


class Sink(Actor):
    async def receive(self, message: Any) -> Any:
        return message


class Entity(Actor):
    def __init__(self, key: Any) -> None:
        self.key = key

    async def receive(self, message: Any) -> Any:
        return message


# ------------------------------------------------------------------ actors


async def _actor_round(traced: bool, tells: int, asks: int) -> tuple[float, float]:
    telemetry = None
    if traced:  # built before the system, as open_application does
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        telemetry = Telemetry(
            TelemetryOptions(tracing="console", sample_ratio=0.0, metrics=False),
            span_processor=SimpleSpanProcessor(InMemorySpanExporter()),
        )
    async with open_system(name="app") as system:
        if telemetry is not None:
            telemetry.install(system)
        ref = await system.spawn(Sink, name="sink")
        started = time.perf_counter()
        batch = 500
        for _ in range(tells // batch):
            for i in range(batch):
                ref.tell(i)
            await ref.ask(None)  # drained up to here
        tell_rate = tells / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(asks):
            await ref.ask(i)
        ask_rate = asks / (time.perf_counter() - started)
        if telemetry is not None:
            await telemetry.aclose()
    return tell_rate, ask_rate


def _actors(report: Report, quick: bool) -> None:
    tells, asks = (50_000, 5_000) if quick else (300_000, 30_000)
    rounds = 1 if quick else ACTOR_ROUNDS
    best: dict[str, list[float]] = {"off": [0.0, 0.0], "installed": [0.0, 0.0]}
    pairs: list[tuple[float, float]] = []
    # The SDK imported before the first system starts, as in a served process
    # (open_application builds its Telemetry first): open_system's startup
    # freeze then covers it for every round, not only for those after the first.
    import triotok.telemetry._tracing  # noqa: F401

    # Alternating in one process, the order swapped every round: this VM's
    # speed drifts by more than the cost measured, from process to process
    # and minute to minute; a pair of adjacent rounds sees the same machine.
    for i in range(rounds):
        order = ("off", "installed") if i % 2 == 0 else ("installed", "off")
        got: dict[str, tuple[float, float]] = {}
        for name in order:
            progress(f"actors round {i + 1}/{rounds}: {name}")
            got[name] = trio.run(_actor_round, name == "installed", tells, asks)
            best[name] = [max(best[name][0], got[name][0]), max(best[name][1], got[name][1])]
        pairs.append((got["installed"][0] / got["off"][0], got["installed"][1] / got["off"][1]))
    medians = [statistics.median(p[k] for p in pairs) for k in (0, 1)]
    for name, label in (("off", "no telemetry"), ("installed", "tracing installed, sampling off")):
        report.add(Row(f"tell, {label}", best[name][0], "msg/s", extra={"rounds": rounds}))
        report.add(Row(f"ask, {label}", best[name][1], "asks/s", extra={"rounds": rounds}))
    for k, kind in enumerate(("tell", "ask")):
        report.compare(f"{kind}, tracing installed, sampling off", f"{kind}, no telemetry")
        row = report.add(
            Row(
                f"{kind}: installed / none, median of {rounds} paired rounds",
                medians[k],
                "x",
                extra={"pairs": [round(p[k], 3) for p in pairs]},
            )
        )
        row.budget, row.ok = ">= 0.97x", medians[k] >= 0.97
        progress(f"{kind}: paired ratios {', '.join(f'{p[k]:.3f}' for p in pairs)}")


# ------------------------------------------------------------------ HTTP


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of process ``pid`` (all its threads) and of its live children
    (the span forwarder), or None without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in _children(pid):
        total += _cpu_seconds(child) or 0.0
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(c) for c in listed.read().split()]
        except OSError:
            continue
    return found


class _Accept(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _http(report: Report, quick: bool) -> None:
    seconds = 1.0 if quick else SECONDS
    rounds = 1 if quick else ROUNDS
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
    variants = {  # TRIOTOK_* settings of each server
        "telemetry off": {"TRIOTOK_METRICS": "false"},
        "metrics on": {"TRIOTOK_METRICS": "true"},
        "tracing 1.0 + OTLP": {
            "TRIOTOK_METRICS": "false",
            "TRIOTOK_TRACING": "otlp",
            "TRIOTOK_TRACE_SAMPLE_RATIO": "1.0",
            "TRIOTOK_OTLP_ENDPOINT": endpoint,
        },
    }
    procs: list[Any] = []
    best: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # server CPU seconds per request, per round
    with tempfile.TemporaryDirectory(prefix="triotok-bench-telemetry-") as tmp:
        try:
            plans = {}
            for index, (name, settings) in enumerate(variants.items()):
                store_dir = f"{tmp}/{index}"
                os.mkdir(store_dir)
                seeder = python("import sys, bench.http as b; b._seed(sys.argv[1])", store_dir)
                info = first_line(seeder)
                seeder.wait(timeout=60)
                proc, port = _serve_triotok(store_dir, 1, settings)
                procs.append(proc)
                headers = {"Authorization": f"Bearer {info['key']}", "X-Tenant": "bench"}
                plans[name] = (port, headers, proc.pid)
            # The external generator when installed (bench/http.py's): the load
            # then leaves the servers the CPU a Python client would take.
            measure = _wrk if shutil.which("wrk") else _builtin
            progress(f"load generator: {'wrk' if measure is _wrk else 'built-in client'}")
            for port, headers, _ in plans.values():
                measure(port, headers, 1.0)  # a warm-up (wrk takes whole seconds)
            names = list(plans)
            for i in range(rounds):
                # Each round against its own "off" round, the order rotated.
                rates: dict[str, float] = {}
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    port, headers, pid = plans[name]
                    progress(f"http round {i + 1}/{rounds}: {name}")
                    before = _cpu_seconds(pid)
                    result = measure(port, headers, seconds)
                    after = _cpu_seconds(pid)
                    if before is not None and after is not None and result["rate"] > 0:
                        used = (after - before) / (result["rate"] * seconds)
                        cpu.setdefault(name, []).append(used)
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['errors']} non-200 answers")
                    rates[name] = result["rate"]
                    if name not in best or result["rate"] > best[name]["rate"]:
                        best[name] = result
                for name in names[1:]:
                    ratios.setdefault(name, []).append(rates[name] / rates["telemetry off"])
        finally:
            stop(*procs)
            sink.shutdown()
    for name in variants:
        report.add(Row(f"GET tenant, {name}", best[name]["rate"], "req/s"))
    for name, floor in (("metrics on", 0.95), ("tracing 1.0 + OTLP", 0.75)):
        report.compare(f"GET tenant, {name}", "GET tenant, telemetry off")
        median = statistics.median(ratios[name])
        row = report.add(
            Row(
                f"GET tenant, {name} / off, median of {rounds} rounds",
                median,
                "x",
                extra={"rounds": [round(r, 3) for r in ratios[name]]},
            )
        )
        row.budget, row.ok = f">= {floor:.2f}x", median >= floor
        progress(f"{name}: ratios {', '.join(f'{r:.3f}' for r in ratios[name])}")
    if len(cpu) == len(variants):  # /proc was there for every round
        for name in variants:
            us = [c * 1e6 for c in cpu[name]]
            report.add(
                Row(
                    f"GET tenant, {name}: server CPU per request (median)",
                    statistics.median(us),
                    "us",
                    extra={"rounds": [round(u, 1) for u in us]},
                )
            )
        off = cpu["telemetry off"]
        for name in names[1:]:
            paired = [o / c for o, c in zip(off, cpu[name], strict=True)]
            report.add(
                Row(
                    f"GET tenant, {name}: CPU per request off / this, median of {rounds}",
                    statistics.median(paired),
                    "x",
                    extra={"rounds": [round(r, 3) for r in paired]},
                )
            )


# ------------------------------------------------------------------ scrape


async def _scrape(entities: int, tenants: int, repeats: int) -> tuple[float, int]:
    from triotok.resilience import LoadingCache

    telemetry = Telemetry(TelemetryOptions(metrics=True))
    metrics = telemetry.metrics
    assert metrics is not None

    class Tenants(Actor):
        async def on_start(self) -> None:
            async def load(key: str) -> str:
                await trio.lowlevel.checkpoint()
                return key

            self.cache = LoadingCache(load, nursery=self.ctx.nursery, name="tenants")
            self.ctx.register("cache", self.cache)

        async def receive(self, message: Any) -> Any:
            return await self.cache.get(message)

    async with open_system(name="app") as system:
        metrics.watch(system)
        cache = await system.spawn(Tenants, name="tenants")
        for i in range(tenants):
            await cache.ask(f"tenant-{i}")
        region = await system.spawn_entities(
            Entities("products", factory=Entity, max_active=entities + 1, idle=3600.0)
        )
        for i in range(entities):
            await region.ask(i, "hello")
        samples = []
        size = 0
        for _ in range(repeats):
            started = time.perf_counter()
            size = len(await metrics.scrape())
            samples.append(time.perf_counter() - started)
        await system.stop()
    return sorted(samples)[len(samples) // 2], size


def _scrape_row(report: Report, quick: bool) -> None:
    progress("scrape with 10,000 active entities and 100 tenants")
    median, size = trio.run(_scrape, 10_000, 100, 5 if quick else 21)
    report.add(
        Row(
            "/metrics scrape, 10,000 entities + 100 tenants (median)",
            median * 1000,
            "ms",
            budget="< 50 ms",
            ok=median < 0.050,
            extra={"bytes": size},
        )
    )


def main(args: argparse.Namespace) -> Report:
    report = Report("telemetry: costs against the same without it")
    _actors(report, args.quick)
    _http(report, args.quick)
    _scrape_row(report, args.quick)
    return report
