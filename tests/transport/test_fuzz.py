"""Hostile input: whatever bytes reach decode, only SchemaError comes out."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transport.strategies import REGISTRY, envelopes
from triotok.transport import Envelope, SchemaError, decode, encode

FUZZ = settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def decode_or_schema_error(data: bytes) -> Envelope | None:
    try:
        envelope = decode(data, registry=REGISTRY)
    except SchemaError:
        return None
    # Whatever decodes is a valid envelope that encodes again.
    encode(envelope, registry=REGISTRY)
    return envelope


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding with bit flips, truncations, insertions or deletions."""
    data = bytearray(encode(draw(envelopes()), registry=REGISTRY))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "replace"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif data:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


# Any value cbor2 can produce on its own, including tags the format refuses.
cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.builds(cbor2.CBORTag, st.integers(0, 2**16), inner)
    ),
    max_leaves=10,
)


def _replace_somewhere(raw: Any, path: list[int], value: Any) -> Any:
    """Replace the value at a pseudo-random position (chosen by ``path``) inside ``raw``."""
    if not path or not isinstance(raw, dict | list) or not raw:
        return value
    keys = list(raw.keys()) if isinstance(raw, dict) else list(range(len(raw)))
    key = keys[path[0] % len(keys)]
    raw[key] = _replace_somewhere(raw[key], path[1:], value)
    return raw


@given(st.binary(max_size=512))
@FUZZ
def test_random_bytes(data: bytes) -> None:
    decode_or_schema_error(data)


@given(mutated())
@FUZZ
def test_mutated_encodings(data: bytes) -> None:
    decode_or_schema_error(data)


@given(envelopes(), st.lists(st.integers(0, 50), min_size=1, max_size=5), cbor_values)
@FUZZ
def test_structurally_mutated_maps(envelope: Envelope, path: list[int], value: Any) -> None:
    raw = cbor2.loads(encode(envelope, registry=REGISTRY))
    try:
        data = cbor2.dumps(_replace_somewhere(raw, path, value), canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        return  # hypothesis made something cbor2 itself will not write
    decode_or_schema_error(data)


def test_decode_survives_a_huge_declared_length() -> None:
    for data in (b"\x9b" + b"\xff" * 8, b"\x5b" + b"\x7f" + b"\xff" * 7, b"\xbb" + b"\xff" * 8):
        assert decode_or_schema_error(data) is None
