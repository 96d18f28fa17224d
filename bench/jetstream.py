"""L2 (NATS JetStream) against L1 (outbox relay -> bus), end to end, in one process.

``python -m bench jetstream`` (also reachable as ``python -m bench stream``):
a SQLite store, its outbox, the relay and one consumer group, on L1 (the relay
hands rows to the bus) and on L2 (the relay forwards rows to a local
``nats-server -js`` started by :class:`triotok.testing.NatsServer`; the group
reads its durable consumer). Figures:

* events/s committed (100 per unit of work) until the group handled them all;
* commit -> handler latency p50/p99, one event per unit of work, spaced out;
* L2 only: replay rate, the group moved back to sequence 1.

One consumer process only: the 2-process figure of the issue is not measured.
"""

from __future__ import annotations

import argparse
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
    t: float  # perf_counter at commit (one process: comparable)


class Counter(Actor):
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def receive(self, message: Any) -> None:
        state = self.state
        state["latencies"].append(time.perf_counter() - message.payload.t)
        state["seen"] += 1
        if state["seen"] >= state["want"]:
            state["done"].set()


@asynccontextmanager
async def open_level(level: str, tmp: Path, nats: NatsServer | None) -> Any:
    async with AsyncExitStack() as stack:
        store: Store = await stack.enter_async_context(open_store(f"sqlite:///{tmp}/{level}.db"))
        system = await stack.enter_async_context(open_system(name="bench"))
        outbox = OutboxTransport(store)
        stream: JetStreamTransport | None = None
        if level == "L2":
            assert nats is not None
            stream = JetStreamTransport(
                JetStreamConfig(nats.url, stream=f"BENCH_{int(time.time() * 1000)}"),
                publisher=outbox.publish,
            )
            await system.spawn(stream.child_spec().factory, stream, name="stream")
            await stream.wait_connected()
        bus: EventBus = await stack.enter_async_context(
            open_bus(system, transport=stream or outbox)
        )
        sink = outbox.deliver if stream is None else stream.forward

        def relay() -> OutboxRelay:
            return OutboxRelay(
                store,
                sink,
                batch_size=200,
                poll_interval=0.05,
                fallback_interval=0.05,
                backoff=Backoff(min=0.01, max=0.05, jitter=0),
            )

        await system.spawn(relay, name="relay")
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
                await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.perf_counter())))
    with trio.fail_after(300):
        await state["done"].wait()
    return count / (time.perf_counter() - started)


async def latency(store: Store, state: dict[str, Any], count: int) -> tuple[float, float]:
    _reset(state, count)
    for n in range(count):
        async with store.transaction() as tx:
            await tx.publish(Envelope.new(Item(f"k{n % 64}", n, time.perf_counter())))
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
    return report
