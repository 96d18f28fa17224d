"""Events: envelope encode+decode throughput, CBOR (triotok codec) vs stdlib json.

``python -m bench events [--quick]``. Every row is measured in this run:

- ``codec round trip``: ``decode(encode(envelope))`` with the full typed
  payload validation (the cost the outbox and strict transport pay);
- ``cbor2 round trip``: ``cbor2.loads(cbor2.dumps(wire_map))`` of the same
  map, so the row above shows what schema validation adds;
- ``json round trip``: ``json.loads(json.dumps(wire_map, default=...))`` of the
  same map, UUIDs/datetimes/Decimals as strings: the baseline.

Later, bus latency rows will join this module.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cbor2

from bench._harness import Report, Row, best_of, progress
from triotok.transport import Envelope, SchemaRegistry, decode, encode

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


def main(args: argparse.Namespace) -> Report:
    """Measure envelope round trips per second; see the module docstring."""
    quick = bool(getattr(args, "quick", False))
    count = 2_000 if quick else 20_000
    rounds = 2 if quick else 5
    report = Report("events: envelope encode + decode")

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
    return report
