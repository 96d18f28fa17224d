"""Graceful degradation and feature flags: what the gate costs, how fast refusals are, flags.

Side by side in one run:

* **gate cost**: ``GET /api/tenants/current`` (the full pipeline, node in
  ``full``) against the same application with the gate's lines cut out of
  the request pipeline (``_app.py`` re-executed without them, in the
  baseline's process only). Each server in its own process, the load from a
  third (``bench._httpload``); rounds alternate, the best of each is kept.
  Budget: with the gate >= 0.97x without.
* **refusals**: ``DELETE /api/keys/{id}`` (a write) while an operator holds the
  node ``read_only``: every answer a 503 from the gate. Budget: p99 < 100 ms.
* **outage** (PostgreSQL, skipped without it): the cluster is stopped under
  the node; the seconds until the node is ``read_only`` by itself, the p99 of
  writes refused meanwhile and after, and the seconds until ``full`` again
  once the cluster is back. Budget: refused writes p99 < 100 ms.
* **the gate's lines alone**: the check a request runs, timed in a loop
  (nanoseconds; against a request's hundreds of microseconds).
* **flag evaluation**: ``FlagSet.enabled`` over 10,000 tenants and the rule
  kinds (rollout by hash, allow list, deny list, tenant choice, unknown),
  each call timed. Budget: p99 < 5 µs. The same through the OpenFeature SDK
  (``TriotokProvider``), for comparison.
"""

from __future__ import annotations

import inspect
import json
import tempfile
import time
import urllib.request
from typing import Any

from bench._harness import Report, Row, percentiles, progress
from bench._httpload import HOST, Plan, first_line, load_round, python, stop

CONNECTIONS = 16
SECONDS = 3.0
ROUNDS = 3
_GATE_START = "    # The service-mode gate"
_GATE_END = "    flag = policy.flag"


# ------------------------------------------------------------------ the servers (subprocesses)


def _without_gate() -> None:
    """Re-execute the request pipeline without the gate (the baseline only)."""
    import triotok.http._app as pipeline

    source = inspect.getsource(pipeline)
    start = source.index(_GATE_START)
    end = source.index(_GATE_END, start)
    exec(compile(source[:start] + source[end:], pipeline.__file__, "exec"), pipeline.__dict__)


def _serve(store_url: str, gate: str) -> None:
    """Run the application; print ``{port, key, ops}`` once ready."""
    import trio

    if gate == "off":
        _without_gate()
    from triotok.app import open_application
    from triotok.config import load_settings
    from triotok.modules.access import ApiKeyRepository, Role
    from triotok.modules.tenants import TenantRepository

    async def run() -> None:
        settings = load_settings(
            flags={
                "port": 0,
                "store_url": store_url,
                "rate_limit_per_ip": 10**9,
                "rate_limit_per_key": 10**9,
                "log_level": "error",
            }
        )
        async with open_application(settings) as app:
            ctx = app.services.context
            tenants, keys = ctx.get(TenantRepository), ctx.get(ApiKeyRepository)
            for tenant in ("bench", settings.operator_tenant):
                await tenants.create(tenant, tenant.title(), actor="bench")
            _, key = await keys.create("bench", Role.ADMIN, actor="bench")
            _, ops = await keys.create(settings.operator_tenant, Role.ADMIN, actor="bench")
            print(json.dumps({"port": app.port, "key": key, "ops": ops}), flush=True)
            await trio.sleep_forever()

    trio.run(run)


def _call(port: int, method: str, path: str, key: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{HOST}:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result
    except urllib.error.HTTPError as error:
        return {"status": error.code}


def _wait_mode(port: int, ops: str, mode: str, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while _call(port, "GET", "/system/mode", ops).get("mode") != mode:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the node did not become {mode} within {timeout} s")
        time.sleep(0.02)
    return time.perf_counter() - started


def _read(key: str) -> Plan:
    return Plan("GET", "/api/tenants/current", {"Authorization": f"Bearer {key}"})


def _write(key: str, expect: int = 503) -> Plan:
    # A write without a body: a refusal before the body was read closes the
    # connection (hypercorn), which the keep-alive load client does not redo.
    headers = {"Authorization": f"Bearer {key}"}
    return Plan("DELETE", "/api/keys/0123456789abcdef", headers, expect=expect)


# ------------------------------------------------------------------ gate cost and refusals


def _gate(report: Report, seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="triotok-bench-degrade-") as tmp:
        code = "import sys, bench.degrade as b; b._serve(*sys.argv[1:])"
        on = python(code, f"sqlite:///{tmp}/on.db", "on")
        off = None
        try:
            with_gate = first_line(on)
            off = python(code, f"sqlite:///{tmp}/off.db", "off")
            without = first_line(off)
            plans = {
                "with the gate": (with_gate["port"], _read(with_gate["key"])),
                "without the gate": (without["port"], _read(without["key"])),
            }
            for port, plan in plans.values():
                load_round(port, plan, CONNECTIONS, 0.5)  # warm-up
            best: dict[str, float] = {}
            for i in range(rounds):
                for name, (port, plan) in plans.items():
                    progress(f"round {i + 1}/{rounds}: GET {name}")
                    result = load_round(port, plan, CONNECTIONS, seconds)
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['errors']} non-200 answers")
                    best[name] = max(best.get(name, 0.0), result["count"] / result["elapsed"])
            for name in ("without the gate", "with the gate"):
                report.add(Row(f"GET tenant, {name}", best[name], "req/s"))
            ratio = report.compare("GET tenant, with the gate", "GET tenant, without the gate")
            row = report.get("GET tenant, with the gate")
            row.budget, row.ok = ">= 0.97x without", ratio >= 0.97

            port, ops = with_gate["port"], with_gate["ops"]
            set_mode = {"mode": "read_only", "reason": "bench", "expires_in": 600}
            _call(port, "POST", "/system/mode", ops, set_mode)
            progress("refused writes (read_only by the operator)")
            result = load_round(port, _write(with_gate["key"]), CONNECTIONS, seconds)
            if result["errors"]:
                raise RuntimeError(f"refusals: {result['errors']} answers other than 503")
            refused = report.add(
                Row(
                    "refused write (503 read_only) p99",
                    result["p99"] * 1000,
                    "ms",
                    extra={"p50_ms": result["p50"] * 1000, "count": result["count"]},
                )
            )
            refused.budget, refused.ok = "< 100 ms", refused.value < 100
            report.add(Row("  refused writes/s", result["count"] / result["elapsed"], "req/s"))
        finally:
            stop(on, off)


# ------------------------------------------------------------------ a real outage


def _outage(report: Report, seconds: float) -> None:
    from triotok.testing import PostgresCluster

    if PostgresCluster.find_bindir() is None:
        progress("no PostgreSQL binaries: the outage part is skipped")
        return
    with PostgresCluster() as cluster:
        url = cluster.create_database("bench")
        server = python("import sys, bench.degrade as b; b._serve(*sys.argv[1:])", url, "on")
        try:
            info = first_line(server)
            port, ops, key = info["port"], info["ops"], info["key"]
            load_round(port, _read(key), CONNECTIONS, 0.5)
            _wait_mode(port, ops, "full")  # the operator's key is cached before the outage
            progress("stopping PostgreSQL under the node")
            cluster.stop()
            to_read_only = _wait_mode(port, ops, "read_only")
            result = load_round(port, _write(key), CONNECTIONS, seconds)
            reads = load_round(port, _read(key), CONNECTIONS, seconds)
            progress("starting PostgreSQL again")
            cluster.start()
            to_full = _wait_mode(port, ops, "full")
        finally:
            stop(server)
    report.add(Row("outage: seconds until read_only", to_read_only, "s"))
    row = report.add(
        Row(
            "outage: refused write p99",
            result["p99"] * 1000,
            "ms",
            extra={"count": result["count"], "errors": result["errors"]},
        )
    )
    row.budget, row.ok = "< 100 ms", row.value < 100 and not result["errors"]
    report.add(
        Row(
            "outage: cached reads/s (200)",
            reads["count"] / reads["elapsed"],
            "req/s",
            extra={"errors": reads["errors"], "p99_ms": reads["p99"] * 1000},
        )
    )
    report.add(Row("outage: seconds until full after restart", to_full, "s"))


# ------------------------------------------------------------------ flag evaluation


def _flags(report: Report, count: int) -> None:
    from triotok.modules import Flag, FlagSet

    flags = FlagSet()
    tenants = [f"tenant-{n}" for n in range(10_000)]
    flags.replace_all(
        [
            Flag("rollout", enabled=True, rollout=37.5),
            Flag("allowed", enabled=True, rollout=0, allow=frozenset(tenants[:100])),
            Flag("denied", enabled=True, rollout=100, deny=frozenset(tenants[:100])),
            Flag("editable", enabled=True, rollout=50, tenant_editable=True),
            Flag("killed", enabled=False),
        ],
        {("editable", t): True for t in tenants[:5000]},
    )
    names = ["rollout", "allowed", "denied", "editable", "killed", "unknown"]
    enabled = flags.enabled
    clock = time.perf_counter_ns
    samples = []
    for i in range(count):
        name, tenant = names[i % len(names)], tenants[i % len(tenants)]
        started = clock()
        enabled(name, tenant=tenant)
        samples.append((clock() - started) / 1000)
    p50, p99 = percentiles(samples, 50, 99)
    row = report.add(Row("flag evaluation p99", p99, "µs", extra={"p50_us": p50, "calls": count}))
    row.budget, row.ok = "< 5 µs", p99 < 5
    report.add(Row("  flag evaluation p50", p50, "µs"))

    # The same flags through the OpenFeature SDK (hooks, details): for comparison.
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from triotok.modules.flags import TriotokProvider

    api.set_provider(TriotokProvider(flags))
    try:
        client = api.get_client()
        contexts = [EvaluationContext(targeting_key=t) for t in tenants]
        samples = []
        for i in range(count // 10):
            name, context = names[i % len(names)], contexts[i % len(contexts)]
            started = clock()
            client.get_boolean_value(name, False, context)
            samples.append((clock() - started) / 1000)
    finally:
        api.clear_providers()
    p50, p99 = percentiles(samples, 50, 99)
    report.add(Row("  via OpenFeature p50", p50, "µs"))
    report.add(Row("  via OpenFeature p99", p99, "µs"))


def _gate_check(report: Report, count: int) -> None:
    """The gate's own lines, timed alone (robust where HTTP rounds are noisy)."""
    import timeit

    from triotok.resilience import Criticality, ModeBoard, ModePolicy, ModeSignals

    board = ModeBoard()
    gated, crit = True, Criticality.NORMAL

    def check() -> None:
        if board.restricted and gated:
            board.refusal(crit, False)

    full = min(timeit.repeat(check, number=count, repeat=5)) / count * 1e9
    board.apply(ModePolicy().decide(ModeSignals(outbox_lag=999.0), None, 0.0), now=0.0, wall="")
    degraded = min(timeit.repeat(check, number=count, repeat=5)) / count * 1e9
    report.add(Row("gate check, node full", full, "ns"))
    report.add(Row("gate check, node degraded (admitted)", degraded, "ns"))


def main(args: Any) -> Report:
    quick = bool(getattr(args, "quick", False))
    report = Report("degradation and flags")
    _flags(report, 20_000 if quick else 300_000)
    _gate_check(report, 100_000 if quick else 1_000_000)
    _gate(report, 1.0 if quick else SECONDS, 1 if quick else ROUNDS)
    _outage(report, 1.0 if quick else SECONDS)
    return report
