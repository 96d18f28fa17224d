"""Breaker overhead on the payment call: ``Payments.charge`` against calling the provider directly.

Rows, p50 and p99 per call in µs, in one run:

* ``ManualProvider.charge`` awaited directly, and through ``Payments.charge``
  (input checks, the ``payments`` circuit breaker, the timeout scope): the
  gateway's own cost with nothing else in the way;
* ``HttpProvider.charge`` against the local provider of the tests
  (``tests/modules/orders/provider.py``, started in a separate process so
  its threads do not share our GIL), directly and through ``Payments.charge``:
  what that cost is next to a real HTTP round trip on 127.0.0.1.

Direct and gateway calls alternate in rounds, so a noisy neighbour disturbs
both alike; every charge has its own idempotency key (a real charge at the
provider each time). The ratio is gateway/direct at p50 (> 1: slower).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from bench._harness import Report, Row, percentiles, progress
from triotok.modules.orders import Charge, HttpProvider, ManualProvider, Payments

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 10

Charger = Callable[[str], Awaitable[Charge]]


def _direct(provider: ManualProvider | HttpProvider) -> Charger:
    async def charge(order: str) -> Charge:
        return await provider.charge(
            tenant_id="bench",
            order_id=order,
            amount=1250,
            currency="EUR",
            idempotency_key=f"{order}:charge",
        )

    return charge


def _gateway(payments: Payments) -> Charger:
    async def charge(order: str) -> Charge:
        return await payments.charge(
            tenant_id="bench",
            order_id=order,
            amount=1250,
            currency="EUR",
            idempotency_key=f"{order}:charge",
        )

    return charge


async def _measure(calls: dict[str, Charger], per_round: int, tag: str) -> dict[str, list[float]]:
    """Seconds per call of each charger, in alternating rounds (after one warm-up round)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    clock = time.perf_counter
    for round_ in range(ROUNDS + 1):
        for path, (name, charge) in enumerate(calls.items()):
            for i in range(per_round):
                order = f"{tag}{path}-{round_}-{i}"
                started = clock()
                await charge(order)
                if round_:
                    samples[name].append(clock() - started)
    return samples


def _rows(report: Report, samples: dict[str, list[float]], direct: str, gateway: str) -> None:
    (d50, d99), (g50, g99) = (
        [x * 1e6 for x in percentiles(samples[name], 50, 99)] for name in (direct, gateway)
    )
    n = len(samples[direct])
    report.add(Row(f"{direct} p50", d50, "µs", extra={"p99_us": d99, "n": n}))
    report.add(Row(f"{direct} p99", d99, "µs"))
    row = report.add(Row(f"{gateway} p50", g50, "µs", extra={"p99_us": g99, "n": n}))
    report.compare(row.name, f"{direct} p50", higher_is_better=False)
    row.extra["overhead_us"] = g50 - d50
    row.extra["slowdown"] = g50 / d50
    row99 = report.add(Row(f"{gateway} p99", g99, "µs"))
    report.compare(row99.name, f"{direct} p99", higher_is_better=False)
    progress(
        f"{direct}: p50 {d50:.1f} µs p99 {d99:.1f} µs; {gateway}: p50 {g50:.1f} µs"
        f" p99 {g99:.1f} µs ({g50 / d50:.2f}x at p50, +{g50 - d50:.1f} µs)"
    )


def _start_provider() -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.modules.orders.provider", "--port", "0"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the local provider did not start")
    url: str = json.loads(line)["url"]
    assert url.startswith("http://127.0.0.1:")
    return process, url


async def _manual(per_round: int) -> dict[str, list[float]]:
    provider = ManualProvider()
    payments = Payments(provider)
    return await _measure(
        {"manual direct": _direct(provider), "manual via Payments": _gateway(payments)},
        per_round,
        "m",
    )


async def _http(url: str, per_round: int) -> dict[str, list[float]]:
    # Two providers (each its own kept-alive connection), so neither path warms the other's.
    direct = HttpProvider(url, timeout=5)
    payments = Payments(HttpProvider(url, timeout=5))
    try:
        return await _measure(
            {"http direct": _direct(direct), "http via Payments": _gateway(payments)},
            per_round,
            "h",
        )
    finally:
        await direct.aclose()
        await payments.aclose()


def main(args: argparse.Namespace) -> Report:
    """Measure the rows above; ``args.quick`` shrinks the counts ten-fold."""
    manual_round = 2_000 if args.quick else 20_000
    http_round = 30 if args.quick else 300
    report = Report("payments: breaker overhead on the payment call")

    progress(f"manual provider, {ROUNDS} rounds x {manual_round:,} calls per path")
    samples = trio.run(_manual, manual_round)
    _rows(report, samples, "manual direct", "manual via Payments")

    progress(f"http provider on 127.0.0.1, {ROUNDS} rounds x {http_round:,} calls per path")
    process, url = _start_provider()
    try:
        samples = trio.run(_http, url, http_round)
    finally:
        process.terminate()
        process.wait(timeout=10)
    _rows(report, samples, "http direct", "http via Payments")
    return report
