"""What a unit of work pays for its outbox row, and how fast the relay moves events.

Side by side in one run, per backend: a transaction that writes one data row,
and the same transaction that also publishes one event (CBOR-encoded
``Envelope`` + outbox insert, and on PostgreSQL the ``NOTIFY`` at commit).
The figure is the median latency per transaction; the budget is on the
difference (seed target: +0.5 ms). PostgreSQL runs on a throwaway local
cluster started with ``PostgresCluster`` (``fsync=off``), so absolute
PostgreSQL figures are optimistic; the difference is what this measures.

Relay throughput, per backend, with an ``OutboxRelay`` in the same process
handing events to a handler that only records the time:

* *live*: one producer commits data row + event per transaction while the
  relay runs; events/s from the first commit to the last handler call, and
  the commit-to-handler latency (p50/p99);
* *backlog*: events committed beforehand (100 per transaction), then the
  relay started; events/s to drain them.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from bench._harness import Report, Row, percentiles, progress
from triotok import open_system
from triotok.app import schemas_of
from triotok.store import OutboxRelay, Store, open_store
from triotok.testing import PostgresCluster
from triotok.transport import Envelope, event

SCHEMAS = schemas_of()

BUDGET_MS = 0.5
ROUNDS = 5


@event("bench.store.recorded", version=1)
@dataclass(frozen=True)
class Recorded:
    """The benchmark's event payload."""

    resource: str
    amount: int


async def _one(store: Store, i: int, *, publish: bool) -> float:
    envelope = Envelope.new(Recorded(f"r{i}", i), tenant_id="bench") if publish else None
    start = time.perf_counter()
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO audit_log (tenant_id, actor, action, resource) VALUES ($1, $2, $3, $4)",
            "bench",
            "bench",
            "record",
            f"r{i}",
        )
        if envelope is not None:
            await tx.publish(envelope)
    return time.perf_counter() - start


async def _measure(url: str, count: int) -> tuple[list[float], list[float]]:
    plain: list[float] = []
    outbox: list[float] = []
    async with open_store(url, schemas=SCHEMAS) as store:
        for i in range(min(50, count)):  # warm-up: connections, statement caches
            await _one(store, -i - 1, publish=i % 2 == 0)
        per_round = max(1, count // ROUNDS)
        n = 0
        # Alternating blocks, so drift (checkpoints, caches) hits both variants alike.
        for _ in range(ROUNDS):
            for _ in range(per_round):
                plain.append(await _one(store, n, publish=False))
                n += 1
            for _ in range(per_round):
                outbox.append(await _one(store, n, publish=True))
                n += 1
    return plain, outbox


def _report(report: Report, backend: str, plain: list[float], outbox: list[float]) -> None:
    p50_plain, p99_plain = (x * 1000 for x in percentiles(plain, 50, 99))
    p50_outbox, p99_outbox = (x * 1000 for x in percentiles(outbox, 50, 99))
    base = f"{backend}: tx, 1 row"
    with_outbox = f"{backend}: tx, 1 row + outbox event"
    report.add(Row(base, p50_plain, "ms p50", extra={"p99_ms": p99_plain, "n": len(plain)}))
    report.add(
        Row(with_outbox, p50_outbox, "ms p50", extra={"p99_ms": p99_outbox, "n": len(outbox)})
    )
    report.compare(with_outbox, base, higher_is_better=False)
    delta = p50_outbox - p50_plain
    report.add(
        Row(
            f"{backend}: outbox row overhead",
            delta,
            "ms",
            budget=f"<= +{BUDGET_MS} ms",
            ok=delta <= BUDGET_MS,
        )
    )
    progress(f"{backend}: {p50_plain:.3f} ms -> {p50_outbox:.3f} ms (+{delta:.3f} ms)")


@dataclass
class _Throughput:
    events_per_s: float
    latencies: list[float]


async def _relay_run(url: str, count: int, *, backlog: bool) -> _Throughput:
    """Commit ``count`` events and time the relay delivering them (see the module docstring)."""
    committed: dict[object, float] = {}
    latencies: list[float] = []
    done = trio.Event()

    async def handler(envelope: Envelope) -> None:
        now = time.perf_counter()
        latencies.append(now - committed.get(envelope.id, now))
        if len(latencies) == count:
            done.set()

    relay = functools.partial(
        OutboxRelay, node_id="bench", batch_size=100, poll_interval=1.0, retention=None
    )
    async with open_store(url, schemas=SCHEMAS) as store, open_system(name="bench") as system:
        if backlog:
            for start in range(0, count, 100):
                async with store.transaction() as tx:
                    for i in range(start, min(count, start + 100)):
                        await tx.publish(Envelope.new(Recorded(f"b{i}", i), tenant_id="bench"))
            began = time.perf_counter()
            await system.spawn(relay, store, handler, name="relay")
        else:
            await system.spawn(relay, store, handler, name="relay")
            began = time.perf_counter()
            for i in range(count):
                envelope = Envelope.new(Recorded(f"l{i}", i), tenant_id="bench")
                async with store.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO audit_log (tenant_id, actor, action, resource)"
                        " VALUES ($1, $2, $3, $4)",
                        "bench",
                        "bench",
                        "record",
                        f"l{i}",
                    )
                    await tx.publish(envelope)
                # No checkpoint between the commit returning and this line, so
                # the relay cannot have handled the event yet.
                committed[envelope.id] = time.perf_counter()
        with trio.fail_after(600):
            await done.wait()
        elapsed = time.perf_counter() - began
    return _Throughput(count / elapsed, latencies)


def _relay_rows(report: Report, backend: str, url_for: Callable[[], str], count: int) -> None:
    progress(f"{backend}: relay, {count} events committed live")
    live = trio.run(functools.partial(_relay_run, url_for(), count, backlog=False))
    p50, p99 = (x * 1000 for x in percentiles(live.latencies, 50, 99))
    report.add(
        Row(
            f"{backend}: relay, live commit -> handler",
            live.events_per_s,
            "events/s",
            extra={"latency_p50_ms": p50, "latency_p99_ms": p99, "n": count},
        )
    )
    progress(f"{backend}: {live.events_per_s:,.0f} events/s, commit->handler p50 {p50:.2f} ms")
    progress(f"{backend}: relay, draining a backlog of {count} events")
    drained = trio.run(functools.partial(_relay_run, url_for(), count, backlog=True))
    name = f"{backend}: relay, backlog drain"
    report.add(Row(name, drained.events_per_s, "events/s", extra={"n": count}))
    progress(f"{backend}: {drained.events_per_s:,.0f} events/s draining")


def main(args: argparse.Namespace) -> Report:
    """Run both backends; ``args.quick`` shrinks the counts."""
    count = 250 if args.quick else 2500
    report = Report("store: unit of work with and without its outbox row")
    with tempfile.TemporaryDirectory(prefix="triotok-bench-") as tmp:
        progress(f"sqlite: {count} + {count} transactions")
        plain, outbox = trio.run(_measure, f"sqlite:///{tmp}/bench.db", count)
        _report(report, "sqlite", plain, outbox)
        files = iter(range(1, 1000))
        _relay_rows(report, "sqlite", lambda: f"sqlite:///{tmp}/relay{next(files)}.db", count)
    if PostgresCluster.find_bindir() is None:
        progress("postgresql: binaries not found, skipped")
        return report
    progress("postgresql: starting a throwaway cluster")
    with PostgresCluster() as cluster:
        url = cluster.create_database("bench")
        progress(f"postgresql: {count} + {count} transactions")
        plain, outbox = trio.run(_measure, url, count)
        _report(report, "postgresql", plain, outbox)
        _relay_rows(report, "postgresql", cluster.create_database, count)
    return report
