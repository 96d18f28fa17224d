"""InMemoryTransport: ordered delivery, strict round trips, subscription rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from tests.transport.strategies import REGISTRY, Pinged
from tests.transport.test_codec import ping_envelope
from triotok.transport import (
    Envelope,
    InMemoryTransport,
    InvalidConfig,
    SchemaError,
    Transport,
    TransportStatistics,
)


class Recorder:
    def __init__(self, name: str, log: list[tuple[str, Envelope]]) -> None:
        self.name, self.log = name, log

    async def __call__(self, envelope: Envelope) -> None:
        self.log.append((self.name, envelope))


def envelopes(n: int) -> list[Envelope]:
    return [dataclasses.replace(ping_envelope(), payload=Pinged(i, "x")) for i in range(n)]


async def test_delivers_in_publish_order_to_subscribers_in_order() -> None:
    transport: Transport = InMemoryTransport(registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []
    await transport.subscribe("a", Recorder("a", log))
    await transport.subscribe("b", Recorder("b", log))
    sent = envelopes(3)
    for envelope in sent:
        await transport.publish(envelope)
    assert [(name, e.payload.n) for name, e in log] == [
        ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2),
    ]  # fmt: skip


async def test_lenient_mode_passes_the_same_object() -> None:
    transport = InMemoryTransport(registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []
    await transport.subscribe("a", Recorder("a", log))
    envelope = ping_envelope()
    await transport.publish(envelope)
    assert log[0][1] is envelope


async def test_strict_mode_round_trips_through_the_codec() -> None:
    transport = InMemoryTransport(strict=True, registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []
    await transport.subscribe("a", Recorder("a", log))
    await transport.subscribe("b", Recorder("b", log))
    envelope = ping_envelope()
    await transport.publish(envelope)
    (_, first), (_, second) = log
    assert first == envelope == second
    # Each subscriber has its own copy, as if it had crossed a process boundary.
    assert first is not envelope
    assert second is not first
    assert first.payload is not second.payload


async def test_strict_mode_refuses_what_could_not_travel() -> None:
    @dataclass(frozen=True)
    class Unregistered:
        n: int

    transport = InMemoryTransport(strict=True, registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []
    await transport.subscribe("a", Recorder("a", log))
    with pytest.raises(SchemaError, match="not a registered event payload"):
        await transport.publish(dataclasses.replace(ping_envelope(), payload=Unregistered(1)))
    with pytest.raises(SchemaError, match="n: expected int, got str"):
        await transport.publish(dataclasses.replace(ping_envelope(), payload=Pinged("1", "x")))  # type: ignore[arg-type]
    assert log == []
    assert transport.statistics() == TransportStatistics(subscribers=1, published=0, delivered=0)


async def test_strict_mode_respects_max_size() -> None:
    transport = InMemoryTransport(strict=True, registry=REGISTRY, max_size=32)
    with pytest.raises(SchemaError, match="exceeds 32"):
        await transport.publish(ping_envelope())


async def test_duplicate_subscriber_name() -> None:
    transport = InMemoryTransport()
    await transport.subscribe("a", Recorder("a", []))
    with pytest.raises(InvalidConfig, match="subscriber 'a' already exists"):
        await transport.subscribe("a", Recorder("a", []))


async def test_unsubscribe() -> None:
    transport = InMemoryTransport(registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []
    await transport.subscribe("a", Recorder("a", log))
    await transport.unsubscribe("a")
    await transport.unsubscribe("never-subscribed")
    await transport.publish(ping_envelope())
    assert log == []
    assert transport.statistics() == TransportStatistics(subscribers=0, published=1, delivered=0)


async def test_sink_error_propagates_to_the_publisher() -> None:
    transport = InMemoryTransport(registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []

    async def broken(envelope: Envelope) -> None:
        raise RuntimeError("sink down")

    await transport.subscribe("broken", broken)
    await transport.subscribe("after", Recorder("after", log))
    with pytest.raises(RuntimeError, match="sink down"):
        await transport.publish(ping_envelope())
    assert log == []


async def test_subscribing_during_delivery_affects_later_envelopes() -> None:
    transport = InMemoryTransport(registry=REGISTRY)
    log: list[tuple[str, Envelope]] = []

    async def joiner(envelope: Envelope) -> None:
        log.append(("joiner", envelope))
        if envelope.payload.n == 0:
            await transport.subscribe("late", Recorder("late", log))

    await transport.subscribe("joiner", joiner)
    for envelope in envelopes(2):
        await transport.publish(envelope)
    assert [(name, e.payload.n) for name, e in log] == [("joiner", 0), ("joiner", 1), ("late", 1)]
    assert transport.statistics() == TransportStatistics(subscribers=2, published=2, delivered=3)


async def test_a_prefix_subscriber_gets_only_its_event_types() -> None:
    transport = InMemoryTransport(registry=REGISTRY, strict=True)
    log: list[tuple[str, Envelope]] = []
    ping = ping_envelope()
    assert not transport.wants(ping.event_type)  # nobody subscribed yet
    await transport.subscribe("other", Recorder("other", log), prefix="tenant.")
    assert not transport.wants(ping.event_type)
    assert transport.wants("tenant.updated")
    await transport.publish(ping)
    assert log == []
    await transport.subscribe("all", Recorder("all", log))
    assert transport.wants(ping.event_type)
    await transport.publish(ping)
    assert [name for name, _ in log] == ["all"]
    assert transport.statistics().delivered == 1
