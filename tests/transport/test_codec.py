"""The codec: round trips, determinism and the wire format pinned by golden vectors."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transport.strategies import (
    REGISTRY,
    Everything,
    Money,
    Node,
    Pinged,
    envelopes,
)
from triotok.transport import WIRE_VERSION, Envelope, decode, encode

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def ping_envelope() -> Envelope:
    return Envelope(
        id=UUID(int=1),
        schema_version=1,
        event_type="test.pinged",
        correlation_id=UUID(int=2),
        causation_id=UUID(int=3),
        tenant_id="acme",
        trace_id=TRACE,
        timestamp=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        actor_id="/user/pinger",
        payload=Pinged(n=42, name="héllo"),
        retry_count=2,
    )


def everything_envelope() -> Envelope:
    payload = Everything(
        text="t",
        number=-(2**70),
        ratio=0.5,
        flag=True,
        nothing=None,
        blob=b"\x00\xff",
        ident=UUID(int=7),
        when=datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1))),
        price=Money(Decimal("19.90"), "EUR"),
        maybe=None,
        either="x",
        tags=["a", "b"],
        pair=(1, "one"),
        seq=(UUID(int=8),),
        attrs={"w": 1.5},
        tree=Node("root", (Node("leaf", ()),)),
        status="paid",
    )
    return Envelope(
        id=UUID(int=10),
        schema_version=1,
        event_type="test.everything",
        correlation_id=UUID(int=10),
        causation_id=None,
        tenant_id=None,
        trace_id=None,
        timestamp=datetime(2024, 1, 1, tzinfo=UTC),
        actor_id=None,
        payload=payload,
    )


# Golden vectors: changing any byte here is a wire format change. Bump
# WIRE_VERSION (and keep decoding the old one) rather than editing these.
GOLDEN_PING = (
    "ac617601626964d8255000000000000000000000000000000001627473c0781b323032342d30352d3036"
    "5430373a30383a30392e3132333435365a64636f7272d825500000000000000000000000000000000264"
    "747970656b746573742e70696e676564656163746f726c2f757365722f70696e676572656361757365d8"
    "25500000000000000000000000000000000365726574727902657472616365783730302d346266393266"
    "33353737623334646136613363653932396430653065343733362d303066303637616130626139303262"
    "372d303166736368656d61016674656e616e746461636d65677061796c6f6164a2616e182a646e616d65"
    "6668c3a96c6c6f"
)
GOLDEN_EVERYTHING = (
    "ac617601626964d825500000000000000000000000000000000a627473c074323032342d30312d303154"
    "30303a30303a30305a64636f7272d825500000000000000000000000000000000a64747970656f746573"
    "742e65766572797468696e67656163746f72f6656361757365f665726574727900657472616365f66673"
    "6368656d61016674656e616e74f6677061796c6f6164b16373657181d825500000000000000000000000"
    "000000000864626c6f624200ff64666c6167f564706169728201636f6e65647461677382616161626474"
    "65787461746474726565a2656c6162656c64726f6f74686368696c6472656e81a2656c6162656c646c65"
    "6166686368696c6472656e80647768656ec074323032342d30312d30315431313a30303a30305a656174"
    "747273a16177f93e00656964656e74d8255000000000000000000000000000000007656d61796265f665"
    "7072696365a266616d6f756e74c482211907c66863757272656e63796345555265726174696ff9380066"
    "6569746865726178666e756d626572c3493fffffffffffffffff667374617475736470616964676e6f74"
    "68696e67f6"
)


def test_wire_version_is_one() -> None:
    assert WIRE_VERSION == 1


def test_golden_ping() -> None:
    data = encode(ping_envelope(), registry=REGISTRY)
    assert data.hex() == GOLDEN_PING
    assert decode(bytes.fromhex(GOLDEN_PING), registry=REGISTRY) == ping_envelope()


def test_golden_everything() -> None:
    data = encode(everything_envelope(), registry=REGISTRY)
    assert data.hex() == GOLDEN_EVERYTHING
    assert decode(bytes.fromhex(GOLDEN_EVERYTHING), registry=REGISTRY) == everything_envelope()


def test_wire_map_layout() -> None:
    raw = cbor2.loads(encode(ping_envelope(), registry=REGISTRY))
    assert raw == {
        "v": 1,
        "id": UUID(int=1),
        "type": "test.pinged",
        "schema": 1,
        "corr": UUID(int=2),
        "cause": UUID(int=3),
        "tenant": "acme",
        "trace": TRACE,
        "ts": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "actor": "/user/pinger",
        "retry": 2,
        "payload": {"n": 42, "name": "héllo"},
    }


def test_timestamps_are_tag_0_text_in_utc() -> None:
    # 2024-01-01T12:00+01:00 is written as the same instant in UTC.
    data = encode(everything_envelope(), registry=REGISTRY)
    assert b"\xc0\x742024-01-01T11:00:00Z" in data
    assert b"\xc0\x782024" not in data  # no fractional seconds when they are zero


def test_uuids_are_tag_37() -> None:
    data = encode(ping_envelope(), registry=REGISTRY)
    assert b"\xd8\x25\x50" + UUID(int=1).bytes in data


def test_decimals_are_tag_4() -> None:
    data = encode(everything_envelope(), registry=REGISTRY)
    assert bytes.fromhex("c48221") + cbor2.dumps(1990) in data


@given(envelopes())
@settings(max_examples=300)
def test_round_trip(envelope: Envelope) -> None:
    data = encode(envelope, registry=REGISTRY)
    assert decode(data, registry=REGISTRY) == envelope


@given(envelopes())
@settings(max_examples=200)
def test_encoding_is_deterministic(envelope: Envelope) -> None:
    data = encode(envelope, registry=REGISTRY)
    copy = dataclasses.replace(envelope)
    assert encode(copy, registry=REGISTRY) == data
    # Decoding and re-encoding reproduces the bytes: one value, one encoding.
    assert encode(decode(data, registry=REGISTRY), registry=REGISTRY) == data


@given(envelopes(), st.sampled_from([timezone(timedelta(hours=3)), timezone(timedelta(hours=-9))]))
def test_equal_instants_in_other_zones_encode_equally(envelope: Envelope, zone: timezone) -> None:
    shifted = dataclasses.replace(envelope, timestamp=envelope.timestamp.astimezone(zone))
    assert encode(shifted, registry=REGISTRY) == encode(envelope, registry=REGISTRY)


def test_int_in_float_field_encodes_like_the_float() -> None:
    base = everything_envelope()
    as_int = dataclasses.replace(base, payload=dataclasses.replace(base.payload, ratio=1))
    as_float = dataclasses.replace(base, payload=dataclasses.replace(base.payload, ratio=1.0))
    assert encode(as_int, registry=REGISTRY) == encode(as_float, registry=REGISTRY)
    assert type(decode(encode(as_int, registry=REGISTRY), registry=REGISTRY).payload.ratio) is float


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = encode(ping_envelope(), registry=REGISTRY)
    assert decode(bytearray(data), registry=REGISTRY) == ping_envelope()
    assert decode(memoryview(data), registry=REGISTRY) == ping_envelope()
