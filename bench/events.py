"""Events: envelope encode+decode throughput, CBOR (triotok codec) vs stdlib json.

``python -m bench events [--quick]``. Every row is measured in this run:

- ``codec round trip``: ``decode(encode(envelope))`` with the full typed
  payload validation (the cost the outbox and strict transport pay);
- ``cbor2 round trip``: ``cbor2.loads(cbor2.dumps(wire_map))`` of the same
  map, so the row above shows what schema validation adds;
- ``json round trip``: ``json.loads(json.dumps(wire_map, default=...))`` of the
  same map, UUIDs/datetimes/Decimals as strings: the baseline;
- ``bus publish->handler``: latency from ``await bus.publish(envelope)`` to
  the subscriber actor's ``receive`` (one event at a time, real clock, a
  non-strict bus over the in-memory transport), p50/p99 against the seed
  budget p99 < 1 ms;
- ``bus events/s``: events published back to back (BLOCK mailbox
  backpressure) until the subscriber handled them all, without and with
  strict mode, and relay-style ``deliver(wait=True)`` one after another.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cbor2
import trio

from bench._harness import Report, Row, best_of, percentiles, progress
from triotok import Actor, open_system
from triotok.transport import Envelope, EventBus, SchemaRegistry, decode, encode, open_event_bus

REGISTRY = SchemaRegistry()


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price: Decimal


@REGISTRY.event("bench.order_placed", version=1)
@dataclass(frozen=True)
class OrderPlaced:
    order_id: uuid.UUID
    customer_id: uuid.UUID
    placed_at: datetime
    currency: str
    lines: tuple[Line, ...]
    note: str | None
    tags: list[str]


def sample_envelope() -> Envelope:
    """A typical commerce event: a few metadata strings and a three-line order."""
    payload = OrderPlaced(
        order_id=uuid.UUID(int=1),
        customer_id=uuid.UUID(int=2),
        placed_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        currency="EUR",
        lines=tuple(Line(f"sku-{i}", i + 1, Decimal("19.90")) for i in range(3)),
        note="leave at the door",
        tags=["web", "promo"],
    )
    return Envelope.new(
        payload,
        registry=REGISTRY,
        tenant_id="acme",
        trace_id="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        actor_id="/app/modules/orders",
        timestamp=datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC),
    )


def _json_default(value: object) -> object:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _rate(fn: Callable[[], object], count: int) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        for _ in range(count):
            fn()
        return count / (time.perf_counter() - start)

    return run


class _Stamp(Actor):
    """Subscriber: records when each event arrived; wakes the publisher after ``expect``."""

    def __init__(self, arrivals: list[float], expect: list[int], done: list[trio.Event]) -> None:
        self.arrivals = arrivals
        self.expect = expect
        self.done = done

    async def receive(self, message: Any) -> Any:
        self.arrivals.append(time.perf_counter())
        if len(self.arrivals) >= self.expect[0]:
            self.done[0].set()
        return None


def _envelopes(count: int) -> list[Envelope]:
    base = sample_envelope()
    # Distinct correlation ids: distinct ordering keys, spread over the lanes.
    return [dataclasses.replace(base, id=uuid.uuid4(), correlation_id=uuid.uuid4())
            for _ in range(count)]  # fmt: skip


async def _with_bus(strict: bool, body: Any) -> Any:
    async with (
        open_system(name="bench") as system,
        open_event_bus(system, registry=REGISTRY, strict=strict) as bus,
    ):
        arrivals: list[float] = []
        expect, done = [0], [trio.Event()]
        ref = await system.spawn(_Stamp, arrivals, expect, done, name="sink")
        await bus.subscribe("bench.*", ref)
        return await body(bus, arrivals, expect, done)


async def bus_latency(count: int) -> list[float]:
    """Publish-to-receive seconds of ``count`` events, published one at a time."""
    envelopes = _envelopes(count)

    async def body(bus: EventBus, arrivals: list[float], expect: list[int], done: Any) -> Any:
        samples = []
        for i, envelope in enumerate(envelopes):
            expect[0], done[0] = i + 1, trio.Event()
            started = time.perf_counter()
            await bus.publish(envelope)
            await done[0].wait()
            samples.append(arrivals[i] - started)
            if i and i % 5_000 == 0:
                progress(f"  latency: {i:,} of {count:,}")
        return samples

    result: list[float] = await _with_bus(False, body)
    return result


async def bus_throughput(count: int, *, strict: bool = False, wait: bool = False) -> float:
    """Events per second through the bus to one subscriber (see the module docstring)."""
    envelopes = _envelopes(count)

    async def body(bus: EventBus, arrivals: list[float], expect: list[int], done: Any) -> Any:
        expect[0] = count
        started = time.perf_counter()
        for envelope in envelopes:
            if wait:
                await bus.deliver(envelope)
            else:
                await bus.publish(envelope)
        await done[0].wait()
        return count / (time.perf_counter() - started)

    rate: float = await _with_bus(strict, body)
    return rate


def _bus_rows(report: Report, quick: bool) -> None:
    count = 2_000 if quick else 20_000
    bulk = 5_000 if quick else 50_000
    progress(f"bus publish->handler latency: {count:,} events one at a time")
    samples = trio.run(bus_latency, count)
    p50, p99 = percentiles(samples, 50, 99)
    report.add(Row("bus publish->handler p50", p50 * 1e6, "us"))
    row = report.add(Row("bus publish->handler p99", p99 * 1e6, "us", budget="< 1,000 us"))
    row.ok = p99 < 1e-3
    progress(f"bus throughput: {bulk:,} events published back to back")
    report.add(Row("bus events/s (publish)", trio.run(bus_throughput, bulk), "events/s"))
    progress(f"bus throughput, strict: {bulk:,} events")
    strict = trio.run(functools.partial(bus_throughput, bulk, strict=True))
    report.add(Row("bus events/s (publish, strict)", strict, "events/s"))
    progress(f"bus throughput, deliver(wait=True): {count:,} events")
    waited = trio.run(functools.partial(bus_throughput, count, wait=True))
    report.add(Row("bus events/s (deliver wait=True)", waited, "events/s"))
    report.compare("bus events/s (publish, strict)", "bus events/s (publish)")


def main(args: argparse.Namespace) -> Report:
    """Measure envelope round trips per second; see the module docstring."""
    quick = bool(getattr(args, "quick", False))
    count = 2_000 if quick else 20_000
    rounds = 2 if quick else 5
    report = Report("events: envelope encode + decode, bus latency and throughput")

    envelope = sample_envelope()
    data = encode(envelope, registry=REGISTRY)
    assert decode(data, registry=REGISTRY) == envelope
    wire: dict[str, Any] = cbor2.loads(data)
    json_text = json.dumps(wire, default=_json_default, sort_keys=True)

    def codec() -> object:
        return decode(encode(envelope, registry=REGISTRY), registry=REGISTRY)

    def raw_cbor() -> object:
        return cbor2.loads(cbor2.dumps(wire, canonical=True))

    def stdlib_json() -> object:
        return json.loads(json.dumps(wire, default=_json_default, sort_keys=True))

    progress(f"json round trip: {rounds} x {count:,}")
    report.add(
        Row(
            "json round trip (same map)",
            best_of(rounds, _rate(stdlib_json, count)),
            "ops/s",
            extra={"bytes": len(json_text.encode())},
        )
    )
    progress(f"cbor2 round trip: {rounds} x {count:,}")
    report.add(
        Row(
            "cbor2 round trip (same map)",
            best_of(rounds, _rate(raw_cbor, count)),
            "ops/s",
            extra={"bytes": len(data)},
        )
    )
    progress(f"triotok codec round trip: {rounds} x {count:,}")
    report.add(
        Row(
            "codec round trip (typed, validated)",
            best_of(rounds, _rate(codec, count)),
            "ops/s",
            extra={"bytes": len(data)},
        )
    )
    encode_only = best_of(rounds, _rate(lambda: encode(envelope, registry=REGISTRY), count))
    decode_only = best_of(rounds, _rate(lambda: decode(data, registry=REGISTRY), count))
    report.add(Row("codec encode only", encode_only, "ops/s"))
    report.add(Row("codec decode only", decode_only, "ops/s"))
    report.compare("cbor2 round trip (same map)", "json round trip (same map)")
    report.compare("codec round trip (typed, validated)", "json round trip (same map)")
    report.add(Row("encoded size cbor", len(data), "bytes"))
    report.add(Row("encoded size json", len(json_text.encode()), "bytes"))
    report.compare("encoded size cbor", "encoded size json", higher_is_better=False)
    _bus_rows(report, quick)
    return report
