"""L2 (NATS JetStream) against L1 (outbox relay -> bus), end to end, in one process.

``python -m bench jetstream`` (also reachable as ``python -m bench stream``):
a SQLite store, its outbox, the relay and one consumer group, on L1 (the relay
hands rows to the bus) and on L2 (the relay forwards rows to a local
``nats-server -js`` started by :class:`triotok.testing.NatsServer`; the group
reads its durable consumer). Figures:

* events/s committed (100 per unit of work) until the group handled them all;
* commit -> handler latency p50/p99, one event per unit of work, spaced out;
* L2 only: replay rate, the group moved back to sequence 1;
* the same throughput and latency with the group's consumers in 1 and in 2
  separate processes (:func:`consumer_main`): on L1 each runs its own relay
  (they claim rows of one SQLite file between them), on L2 the producing
  process relays to the stream and the processes share the durable consumer.

Latencies are wall clock (``time.time()`` in the event, read by the handler),
so they compare across processes of this machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bench._harness import Report, Row, percentiles, progress
from triotok import Actor
from triotok.resilience import Backoff
from triotok.store import OutboxRelay, OutboxTransport, Store, open_store
from triotok.supervision import open_system
from triotok.testing import NatsServer
from triotok.transport import Envelope, EventBus, JetStreamConfig, JetStreamTransport, event
from triotok.transport import open_event_bus as open_bus


@event("bench.stream.item", version=1)
@dataclass(frozen=True)
class Item:
    key: str
    n: int
    t: float  # time.time() at commit (one machine: comparable across processes)


class Counter(Actor):
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def receive(self, message: Any) -> None:
        state = self.state
        state["latencies"].append(time.time() - message.payload.t)
        state["seen"] += 1
        if state["seen"] >= state["want"]:
            state["done"].set()


def _relay(store: Store, sink: Any) -> OutboxRelay:
    return OutboxRelay(
        store,
        sink,
        batch_size=200,
        poll_interval=0.05,
        fallback_interval=0.05,
        backoff=Backoff(min=0.01, max=0.05, jitter=0),
    )


async def _open_stream(system: Any, outbox: OutboxTransport, url: str, name: str) -> Any:
    stream = JetStreamTransport(JetStreamConfig(url, stream=name), publisher=outbox.publish)
    await system.spawn(stream.child_spec().factory, stream, name="stream")
    await stream.wait_connected()
    return stream


@asynccontextmanager
async def open_level(level: str, tmp: Path, nats: NatsServer | None) -> Any:
    async with AsyncExitStack() as stack:
        store: Store = await stack.enter_async_context(open_store(f"sqlite:///{tmp}/{level}.db"))
        system = await stack.enter_async_context(open_system(name="bench"))
        outbox = OutboxTransport(store)
        stream: JetStreamTransport | None = None
        if level == "L2":
            assert nats is not None
            stream = await _open_stream(
                system, outbox, nats.url, f"BENCH_{int(time.time() * 1000)}"
            )
        bus: EventBus = await stack.enter_async_context(
            open_bus(system, transport=stream or outbox)
        )
        sink = outbox.deliver if stream is None else stream.forward
        await system.spawn(functools.partial(_relay, store, sink), name="relay")
        state: dict[str, Any] = {"seen": 0, "want": 0, "latencies": [], "done": trio.Event()}
        ref = await system.spawn(Counter, state, name="counter")
        await bus.subscribe("bench.stream.*", ref, group="bench", lanes=8)
        yield store, state, stream


def _reset(state: dict[str, Any], want: int) -> None:
    state.update(seen=0, want=want, latencies=[], done=trio.Event())


async def throughput(store: Store, state: dict[str, Any], count: int) -> float:
    _reset(state, count)
    started = time.perf_counter()
    for base in range(0, count, 100):
        async with store.transaction() as tx:
            for n in range(base, min(base + 100, count)):
                await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.time())))
    with trio.fail_after(300):
        await state["done"].wait()
    return count / (time.perf_counter() - started)


async def latency(store: Store, state: dict[str, Any], count: int) -> tuple[float, float]:
    _reset(state, count)
    for n in range(count):
        async with store.transaction() as tx:
            await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.time())))
        await trio.sleep(0.005)  # spaced out: the latency of one event, not of a queue
    with trio.fail_after(300):
        await state["done"].wait()
    p50, p99 = percentiles(state["latencies"], 50, 99)
    return p50, p99


async def replay_rate(stream: JetStreamTransport, state: dict[str, Any], count: int) -> float:
    _reset(state, count)
    started = time.perf_counter()
    await stream.replay("bench", from_seq=1)
    with trio.fail_after(300):
        await state["done"].wait()
    return count / (time.perf_counter() - started)


async def run_level(
    level: str, nats: NatsServer | None, bulk: int, single: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="triotok-bench-") as tmp:
        async with open_level(level, Path(tmp), nats) as (store, state, stream):
            await throughput(store, state, 200)  # warm-up
            rate = await throughput(store, state, bulk)
            p50, p99 = await latency(store, state, single)
            out = {"rate": rate, "p50": p50, "p99": p99}
            if stream is not None:
                total = 200 + bulk + single
                out["replay"] = await replay_rate(stream, state, total)
            return out


# ------------------------------------------------------------------ consumer processes

ROOT = Path(__file__).resolve().parents[1]
_CONSUMER = "import sys, trio, bench.jetstream as j; trio.run(j.consumer_main, *sys.argv[1:])"


async def consumer_main(level: str, db: str, url: str, stream_name: str) -> None:
    """One consumer process: the ``bench`` group's handler (on L1 with its own relay).

    Prints ``ready``, then ``seen N`` as it handles events, and on SIGTERM
    the JSON list of its commit -> handler latencies.
    """
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(open_store(f"sqlite:///{db}"))
            system = await stack.enter_async_context(open_system(name="bench-consumer"))
            outbox = OutboxTransport(store)
            stream = None if level == "L1" else await _open_stream(system, outbox, url, stream_name)
            bus = await stack.enter_async_context(open_bus(system, transport=stream or outbox))
            state: dict[str, Any] = {"seen": 0, "want": -1, "latencies": [], "done": trio.Event()}
            ref = await system.spawn(Counter, state, name="counter")
            await bus.subscribe("bench.stream.*", ref, group="bench", lanes=8)
            if stream is None:
                await system.spawn(functools.partial(_relay, store, outbox.deliver), name="relay")
            print("ready", flush=True)
            async with trio.open_nursery() as nursery:

                async def report() -> None:
                    last = 0
                    while True:
                        if state["seen"] != last:
                            last = state["seen"]
                            print(f"seen {last}", flush=True)
                        await trio.sleep(0.02)

                nursery.start_soon(report)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()
    print(json.dumps(state["latencies"]), flush=True)


class _Consumers:
    """Consumer processes and the events they report handled."""

    def __init__(self, procs: list[trio.Process]) -> None:
        self.procs = procs
        self.seen = [0] * len(procs)
        self.latencies: list[float] = []
        self.changed = trio.Event()

    async def read(self, i: int, ready: trio.Event) -> None:
        stdout = self.procs[i].stdout
        assert stdout is not None
        buffer = b""
        async for chunk in stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line == b"ready":
                    ready.set()
                elif line.startswith(b"seen "):
                    self.seen[i] = int(line.split()[1])
                    self.changed.set()
                    self.changed = trio.Event()
                elif line.startswith(b"["):
                    self.latencies += json.loads(line)

    async def wait_seen(self, want: int) -> None:
        while sum(self.seen) < want:
            await self.changed.wait()


async def _phase(
    level: str, db: str, url: str, stream_name: str, processes: int, produce: Any, want: int
) -> tuple[float, list[float]]:
    """Start ``processes`` consumers, run ``produce()``, wait until ``want`` were handled.

    Returns the seconds from the start of ``produce`` until then, and the latencies.
    """
    async with trio.open_nursery() as nursery:
        procs = [
            await trio.lowlevel.open_process(
                [sys.executable, "-c", _CONSUMER, level, db, url, stream_name],
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
            for _ in range(processes)
        ]
        consumers = _Consumers(procs)
        try:
            with trio.fail_after(120):
                for i in range(processes):
                    ready = trio.Event()
                    nursery.start_soon(consumers.read, i, ready)
                    await ready.wait()
            started = time.perf_counter()
            await produce()
            with trio.fail_after(300):
                await consumers.wait_seen(want)
            elapsed = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                for proc in procs:
                    await proc.wait()
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
    return elapsed, consumers.latencies


async def run_processes(
    level: str, nats: NatsServer | None, processes: int, bulk: int, single: int
) -> dict[str, float]:
    """Throughput and latency with the group's consumers in ``processes`` other processes."""
    with tempfile.TemporaryDirectory(prefix="triotok-bench-") as tmp:
        db = f"{tmp}/{level}.db"
        url = "" if nats is None else nats.url
        stream_name = f"BENCHP_{int(time.time() * 1000)}"
        async with AsyncExitStack() as stack:
            store: Store = await stack.enter_async_context(open_store(f"sqlite:///{db}"))
            system = await stack.enter_async_context(open_system(name="bench-producer"))
            if nats is not None:  # L2: this process relays to the stream; consumers read it
                stream = await _open_stream(system, OutboxTransport(store), url, stream_name)
                await system.spawn(functools.partial(_relay, store, stream.forward), name="relay")

            async def burst() -> None:
                for base in range(0, bulk, 100):
                    async with store.transaction() as tx:
                        for n in range(base, min(base + 100, bulk)):
                            await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.time())))

            async def spaced() -> None:
                for n in range(single):
                    async with store.transaction() as tx:
                        await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.time())))
                    await trio.sleep(0.005)  # the latency of one event, not of a queue

            elapsed, _ = await _phase(level, db, url, stream_name, processes, burst, bulk)
            _, latencies = await _phase(level, db, url, stream_name, processes, spaced, single)
    p50, p99 = percentiles(latencies, 50, 99)
    return {"rate": bulk / elapsed, "p50": p50, "p99": p99}


def main(args: argparse.Namespace) -> Report:
    bulk, single = (1_000, 100) if args.quick else (10_000, 500)
    report = Report("jetstream: L2 (NATS JetStream) vs L1 (outbox relay), end to end")
    progress("L1: outbox -> relay -> bus")
    l1 = trio.run(run_level, "L1", None, bulk, single)
    with NatsServer() as nats:
        progress(f"L2: outbox -> relay -> {nats.url} -> durable consumer -> bus")
        l2 = trio.run(run_level, "L2", nats, bulk, single)
    report.add(Row("L1 events/s (commit -> handled)", l1["rate"], "events/s"))
    report.add(Row("L2 events/s (commit -> handled)", l2["rate"], "events/s"))
    report.compare("L2 events/s (commit -> handled)", "L1 events/s (commit -> handled)")
    report.add(Row("L1 commit->handler p50", l1["p50"] * 1e3, "ms"))
    report.add(Row("L1 commit->handler p99", l1["p99"] * 1e3, "ms"))
    report.add(Row("L2 commit->handler p50", l2["p50"] * 1e3, "ms"))
    report.add(Row("L2 commit->handler p99", l2["p99"] * 1e3, "ms"))
    report.add(Row("L2 replay events/s (from seq 1)", l2["replay"], "events/s"))
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for processes in (1, 2):
        progress(f"L1: {processes} consumer process(es), each with its own relay")
        rows["L1", processes] = trio.run(run_processes, "L1", None, processes, bulk, single)
        with NatsServer() as nats:
            progress(f"L2: {processes} consumer process(es) sharing the durable consumer")
            rows["L2", processes] = trio.run(run_processes, "L2", nats, processes, bulk, single)
    for (level, processes), row in rows.items():
        label = f"{level}, {processes} consumer process{'es' if processes > 1 else ''}"
        report.add(Row(f"{label}: events/s", row["rate"], "events/s"))
        report.add(Row(f"{label}: commit->handler p50", row["p50"] * 1e3, "ms"))
        report.add(Row(f"{label}: commit->handler p99", row["p99"] * 1e3, "ms"))
    for level in ("L1", "L2"):
        report.compare(
            f"{level}, 2 consumer processes: events/s", f"{level}, 1 consumer process: events/s"
        )
    report.compare("L2, 1 consumer process: events/s", "L1, 1 consumer process: events/s")
    return report
