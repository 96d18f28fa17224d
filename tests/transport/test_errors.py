"""Every way encode and decode refuse input: always SchemaError, with a clear message."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import cbor2
import pytest

from tests.transport.strategies import REGISTRY, Pinged
from tests.transport.test_codec import everything_envelope, ping_envelope
from triotok.transport import Envelope, SchemaError, SchemaRegistry, decode, encode

GOOD = encode(ping_envelope(), registry=REGISTRY)


def wire(**changes: Any) -> bytes:
    """The good envelope's wire map with keys changed (a value of ... deletes the key)."""
    raw = cbor2.loads(GOOD)
    for key, value in changes.items():
        if value is ...:
            del raw[key]
        else:
            raw[key] = value
    return cbor2.dumps(raw, canonical=True)


def payload(**changes: Any) -> bytes:
    raw = cbor2.loads(GOOD)
    for key, value in changes.items():
        if value is ...:
            del raw["payload"][key]
        else:
            raw["payload"][key] = value
    return cbor2.dumps(raw, canonical=True)


def refuse(data: Any, match: str, *, registry: SchemaRegistry = REGISTRY, **kw: Any) -> None:
    with pytest.raises(SchemaError, match=match):
        decode(data, registry=registry, **kw)


# --------------------------------------------------------------------------- bytes


def test_not_bytes() -> None:
    refuse(GOOD.hex(), "expected bytes, got str")


def test_empty() -> None:
    refuse(b"", "empty input")


def test_oversized() -> None:
    refuse(GOOD, "exceeds the maximum of 10", max_size=10)
    refuse(memoryview(GOOD), "exceeds the maximum", max_size=10)


def test_default_max_size_is_one_mebibyte() -> None:
    refuse(b"\x00" * ((1 << 20) + 1), "exceeds the maximum of 1048576")


def test_malformed() -> None:
    refuse(b"\xff", "malformed CBOR")


@pytest.mark.parametrize("cut", [1, 2, 17, len(GOOD) // 2, len(GOOD) - 1])
def test_truncated(cut: int) -> None:
    refuse(GOOD[:cut], "malformed CBOR")


def test_trailing_bytes() -> None:
    refuse(GOOD + b"\x00", "1 trailing bytes")


def test_invalid_utf8() -> None:
    refuse(cbor2.dumps({"v": 1})[:-1] + b"\x62\xff\xfe", "malformed CBOR")


def test_not_a_map() -> None:
    refuse(cbor2.dumps([1, 2]), "expected a CBOR map, got list")


def test_indefinite_length_refused() -> None:
    refuse(b"\xbf\x61v\x01\xff", "malformed CBOR")


def test_duplicate_keys_refused() -> None:
    refuse(b"\xa2\x61v\x01\x61v\x01", "malformed CBOR")


def test_non_text_keys_refused() -> None:
    refuse(b"\xa1\x81\x01\x01", "malformed CBOR")


@pytest.mark.parametrize(
    "tagged",
    [
        cbor2.CBORTag(1000, 0),  # unknown tag
        cbor2.CBORTag(1, 1_700_000_000),  # epoch datetime: the format uses tag 0 only
        cbor2.CBORTag(258, [1]),  # set
        cbor2.CBORTag(55799, 1),  # self-describe
    ],
)
def test_refused_tags(tagged: cbor2.CBORTag) -> None:
    refuse(wire(tenant=tagged), "malformed CBOR")


def test_value_sharing_refused() -> None:
    # tag 28/29 could make a list that contains itself
    refuse(b"\xd8\x1c\x81\xd8\x1d\x00", "malformed CBOR")


def test_too_deep() -> None:
    refuse(b"\x81" * 200 + b"\x00", "malformed CBOR")


# --------------------------------------------------------------------------- envelope map


def test_missing_wire_version() -> None:
    refuse(wire(v=...), "missing or non-integer wire format version")
    refuse(wire(v="1"), "missing or non-integer wire format version")
    refuse(wire(v=True), "missing or non-integer wire format version")


def test_unknown_wire_version() -> None:
    refuse(wire(v=2), "unknown wire format version 2")


def test_missing_key() -> None:
    refuse(wire(actor=...), r"missing \['actor'\]")


def test_unexpected_key() -> None:
    refuse(wire(extra=1), r"unexpected \['extra'\]")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("id", "not-a-uuid", "id: expected UUID, got str"),
        ("corr", 7, "correlation_id: expected UUID, got int"),
        ("cause", b"x", "causation_id: expected UUID or None, got bytes"),
        ("type", 5, "'type' must be text"),
        ("schema", "1", "'schema' must be an integer"),
        ("schema", 0, "'schema' must be an integer >= 1"),
        ("schema", True, "'schema' must be an integer"),
        ("tenant", 1, "tenant_id: expected str or None, got int"),
        ("trace", "abc", "trace_id is not a W3C traceparent"),
        ("ts", "2024-01-01T00:00:00Z", "timestamp: expected datetime, got str"),
        ("actor", [], "actor_id: expected str or None, got list"),
        ("retry", -1, "retry_count must be >= 0"),
        ("retry", False, "retry_count: expected int, got bool"),
    ],
)
def test_wrong_metadata_types(key: str, value: Any, match: str) -> None:
    refuse(wire(**{key: value}), match)


def test_timestamp_with_offset_is_normalised() -> None:
    envelope = decode(
        wire(ts=cbor2.CBORTag(0, "2024-05-06T09:08:09.123456+02:00")), registry=REGISTRY
    )
    assert envelope.timestamp == ping_envelope().timestamp
    assert envelope.timestamp.tzinfo is UTC


def test_timestamp_out_of_range_in_utc() -> None:
    refuse(wire(ts=cbor2.CBORTag(0, "0001-01-01T00:00:00+05:00")), "out of range")


# --------------------------------------------------------------------------- schemas


def test_unknown_event_type() -> None:
    refuse(wire(type="test.unknown"), "unknown event type 'test.unknown'")


def test_future_version() -> None:
    refuse(wire(schema=2), "test.pinged v2 is newer than the newest known version v1")


def test_payload_not_a_map() -> None:
    refuse(wire(payload=[1]), "payload must be a map")


def test_payload_missing_field() -> None:
    refuse(payload(name=...), r"test.pinged v1: <payload>: .*missing \['name'\]")


def test_payload_unexpected_field() -> None:
    refuse(payload(extra=1), r"unexpected \['extra'\]")


def test_payload_wrong_field_type_names_the_field() -> None:
    refuse(payload(n="42"), "test.pinged v1: n: expected int, got str")
    refuse(payload(n=True), "n: expected int, got bool")


def test_nested_field_path_in_message() -> None:
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"]["tree"]["children"][0]["label"] = 3
    refuse(cbor2.dumps(raw, canonical=True), r"tree\.children\[0\]\.label: expected str, got int")
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"]["attrs"]["w"] = "heavy"
    refuse(cbor2.dumps(raw, canonical=True), r"attrs\['w'\]: expected float, got str")
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"]["price"]["currency"] = "GBP"
    refuse(cbor2.dumps(raw, canonical=True), r"price\.currency: expected one of 'EUR', 'USD'")
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"]["either"] = 1.5
    refuse(cbor2.dumps(raw, canonical=True), r"either: matches none of int \| str, got float")


def test_payload_post_init_rejection_is_schema_error() -> None:
    registry = SchemaRegistry()

    @registry.event("test.positive")
    @dataclass(frozen=True)
    class Positive:
        n: int

        def __post_init__(self) -> None:
            if self.n <= 0:
                raise ValueError("n must be positive")

    data = encode(dataclasses.replace(ping_envelope(), event_type="test.positive",
                                      payload=Positive(1)), registry=registry)  # fmt: skip
    raw = cbor2.loads(data)
    raw["payload"]["n"] = -1
    refuse(cbor2.dumps(raw, canonical=True), "Positive rejected the value: ValueError: n must be",
           registry=registry)  # fmt: skip


# --------------------------------------------------------------------------- encode


def encode_refused(envelope: Any, match: str, **kw: Any) -> None:
    with pytest.raises(SchemaError, match=match):
        encode(envelope, registry=REGISTRY, **kw)


def test_encode_not_an_envelope() -> None:
    encode_refused(Pinged(1, "x"), "expected an Envelope, got Pinged")


def test_encode_unregistered_payload() -> None:
    @dataclass(frozen=True)
    class Stray:
        n: int

    encode_refused(dataclasses.replace(ping_envelope(), payload=Stray(1)), "not a registered")


def test_encode_payload_of_another_type() -> None:
    envelope = dataclasses.replace(ping_envelope(), event_type="test.everything")
    encode_refused(envelope, "envelope says test.everything v1 but its payload Pinged is")
    envelope = dataclasses.replace(ping_envelope(), schema_version=2)
    encode_refused(envelope, "envelope says test.pinged v2")


def test_encode_wrong_field_type() -> None:
    envelope = dataclasses.replace(ping_envelope(), payload=Pinged(n="1", name="x"))  # type: ignore[arg-type]
    encode_refused(envelope, "test.pinged v1: n: expected int, got str")


def test_encode_naive_datetime() -> None:
    base = everything_envelope()
    bad = dataclasses.replace(base.payload, when=datetime(2024, 1, 1))
    encode_refused(dataclasses.replace(base, payload=bad), "when: expected an aware datetime")


def test_encode_non_finite_decimal() -> None:
    base = everything_envelope()
    bad = dataclasses.replace(base.payload, price=dataclasses.replace(
        base.payload.price, amount=Decimal("NaN")))  # fmt: skip
    encode_refused(dataclasses.replace(base, payload=bad), r"price\.amount: expected a finite")


def test_encode_list_where_tuple_expected() -> None:
    base = everything_envelope()
    bad = dataclasses.replace(base.payload, seq=[UUID(int=1)])
    encode_refused(dataclasses.replace(base, payload=bad), "seq: expected tuple, got list")


def test_encode_lone_surrogate() -> None:
    envelope = dataclasses.replace(ping_envelope(), payload=Pinged(1, "\ud800"))
    encode_refused(envelope, "cannot encode as CBOR")


def test_encode_oversized() -> None:
    encode_refused(ping_envelope(), "encoded size .* exceeds 16", max_size=16)


def test_envelope_metadata_is_validated_on_construction() -> None:
    with pytest.raises(SchemaError, match="timestamp must be timezone-aware"):
        dataclasses.replace(ping_envelope(), timestamp=datetime(2024, 1, 1))
    assert isinstance(ping_envelope(), Envelope)


# --------------------------------------------------------------------------- every field type


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("text", 1, "text: expected str, got int"),
        ("number", 1.5, "number: expected int, got float"),
        ("ratio", "1", "ratio: expected float, got str"),
        ("flag", 1, "flag: expected bool, got int"),
        ("nothing", 0, "nothing: expected None, got int"),
        ("blob", "x", "blob: expected bytes, got str"),
        ("ident", "x", "ident: expected UUID, got str"),
        ("when", "2024", "when: expected datetime, got str"),
        ("when", cbor2.CBORTag(0, "0001-01-01T00:00:00+05:00"), "when: datetime is out of range"),
        ("price", [], "price: expected a map for Money, got list"),
        ("maybe", "x", "maybe: expected int, got str"),
        ("tags", "x", "tags: expected list, got str"),
        ("tags", [1], r"tags\[0\]: expected str, got int"),
        ("pair", {}, "pair: expected array, got dict"),
        ("pair", [1], "pair: expected 2 items, got 1"),
        ("pair", [1, 2], r"pair\[1\]: expected str, got int"),
        ("seq", {}, "seq: expected array, got dict"),
        ("attrs", [], "attrs: expected dict, got list"),
        ("status", True, "status: expected one of 'new', 'paid'"),
    ],
)
def test_decode_every_field_type_mismatch(field: str, value: Any, match: str) -> None:
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"][field] = value
    refuse(cbor2.dumps(raw, canonical=True), f"test.everything v1: {match}")


def test_decode_price_amount_must_be_a_decimal() -> None:
    raw = cbor2.loads(encode(everything_envelope(), registry=REGISTRY))
    raw["payload"]["price"]["amount"] = 19.9
    refuse(cbor2.dumps(raw, canonical=True), r"price\.amount: expected Decimal, got float")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("pair", [1, "x"], "pair: expected tuple, got list"),
        ("attrs", {1: 1.0}, "attrs: expected str keys, got int"),
        ("price", {"amount": Decimal(1), "currency": "EUR"}, "price: expected Money, got dict"),
        ("tags", ("a",), "tags: expected list, got tuple"),
        ("nothing", False, "nothing: expected None, got bool"),
    ],
)
def test_encode_every_container_mismatch(field: str, value: Any, match: str) -> None:
    base = everything_envelope()
    bad = dataclasses.replace(base.payload, **{field: value})
    encode_refused(dataclasses.replace(base, payload=bad), f"test.everything v1: {match}")


def test_literal_values_must_be_simple() -> None:
    registry = SchemaRegistry()

    @registry.event("test.literal")
    @dataclass(frozen=True)
    class Odd:
        x: Literal[1.5]  # type: ignore[valid-type]  # deliberately unsupported

    with pytest.raises(SchemaError, match="Literal values must be str, int or bool"):
        registry.contract()


def test_init_false_fields_are_not_on_the_wire() -> None:
    registry = SchemaRegistry()

    @registry.event("test.derived")
    @dataclass(frozen=True)
    class Derived:
        n: int
        double: int = dataclasses.field(init=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "double", self.n * 2)

    assert registry.contract()["test.derived"]["fields"] == {"n": "int"}
    envelope = dataclasses.replace(ping_envelope(), event_type="test.derived", payload=Derived(2))
    data = encode(envelope, registry=registry)
    assert cbor2.loads(data)["payload"] == {"n": 2}
    assert decode(data, registry=registry).payload.double == 4
