"""The CBOR wire format of envelopes: ``encode`` and ``decode``.

Sans-I/O and synchronous. Wire format version 1 is one canonical CBOR map
(RFC 8949 section 4.2.1 core deterministic encoding as done by
``cbor2.dumps(canonical=True)``: shortest forms, definite lengths, keys sorted)
with exactly these keys::

    "v"        1                       wire format version
    "id"       tag 37 (16 bytes)       envelope id
    "type"     text                    event type
    "schema"   uint                    payload schema version
    "corr"     tag 37                  correlation id
    "cause"    tag 37 | null           causation id
    "tenant"   text | null
    "trace"    text | null             W3C traceparent
    "ts"       tag 0 (RFC 3339 text)   UTC, "Z" suffix, microseconds only if non-zero
    "actor"    text | null             path of the emitting actor
    "retry"    uint                    retry count
    "payload"  map                     the payload's fields by name

Payload values: UUID as tag 37, datetime as tag 0 (UTC), Decimal as tag 4,
tuples and lists as arrays, nested dataclasses as maps. Decoding accepts only
those tags (plus bignums, tags 2/3): every other tag, indefinite lengths,
duplicate keys, non-text map keys, trailing bytes and input over ``max_size``
are refused. Every failure of :func:`decode` is a :class:`SchemaError`.
"""

from __future__ import annotations

import io
from typing import Any, NoReturn

import cbor2

from .._exceptions import SchemaError
from ._envelope import Envelope
from ._registry import SchemaRegistry, default_registry

__all__ = ("DEFAULT_MAX_SIZE", "MAX_DEPTH", "WIRE_VERSION", "decode", "encode")

WIRE_VERSION = 1
"""Version of the envelope map itself (the ``"v"`` key); payloads version separately."""

DEFAULT_MAX_SIZE = 1 << 20
"""Largest encoded envelope accepted by default (1 MiB)."""

MAX_DEPTH = 64
"""Deepest container nesting the decoder follows (bounds recursion in validation)."""

_KEYS = frozenset(
    ("v", "id", "type", "schema", "corr", "cause", "tenant", "trace", "ts", "actor", "retry",
     "payload")
)  # fmt: skip


def _refuse_tag(*args: Any) -> NoReturn:
    raise ValueError("tag not allowed in a triotok envelope")


# cbor2 decodes these tags itself; all but 0, 2, 3, 4 and 37 are refused.
# Value sharing (28/29) in particular could build cyclic structures.
_REFUSED_TAGS = (1, 5, 25, 28, 29, 30, 35, 36, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)
_SEMANTIC_DECODERS: dict[int, Any] = dict.fromkeys(_REFUSED_TAGS, _refuse_tag)


def encode(
    envelope: Envelope,
    *,
    registry: SchemaRegistry | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> bytes:
    """Encode ``envelope`` as canonical CBOR; equal envelopes give equal bytes.

    Raises SchemaError if the payload is not the registered class for the
    envelope's ``(event_type, schema_version)``, a field holds a value of the
    wrong type, or the result would exceed ``max_size`` (so it could not be
    decoded with the same limit).

    >>> data = encode(Envelope.new(ProductCreated(sku="a-1")))  # doctest: +SKIP
    """
    if not isinstance(envelope, Envelope):
        raise SchemaError(f"expected an Envelope, got {type(envelope).__name__}")
    reg = registry or default_registry
    wire = {
        "v": WIRE_VERSION,
        "id": envelope.id,
        "type": envelope.event_type,
        "schema": envelope.schema_version,
        "corr": envelope.correlation_id,
        "cause": envelope.causation_id,
        "tenant": envelope.tenant_id,
        "trace": envelope.trace_id,
        "ts": envelope.timestamp,
        "actor": envelope.actor_id,
        "retry": envelope.retry_count,
        "payload": reg.payload_to_wire(
            envelope.event_type, envelope.schema_version, envelope.payload
        ),
    }
    try:
        data = cbor2.dumps(wire, canonical=True)
    except Exception as exc:  # e.g. a str with lone surrogates is not valid UTF-8
        raise SchemaError(f"{envelope.event_type}: cannot encode as CBOR: {exc}") from exc
    if len(data) > max_size:
        raise SchemaError(f"{envelope.event_type}: encoded size {len(data)} exceeds {max_size}")
    return data


def decode(
    data: bytes | bytearray | memoryview,
    *,
    registry: SchemaRegistry | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Envelope:
    """Decode one envelope, upcasting its payload to the current version.

    The result's ``schema_version`` is the current version of its event type;
    all other metadata is returned as sent. Raises SchemaError (and nothing
    else) for oversized, malformed, truncated or trailing input, an unknown
    wire version, wrong field types, an unknown event type, a future payload
    version or a gap in the upcaster chain.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SchemaError(f"expected bytes, got {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_size:
        raise SchemaError(f"input of {size} bytes exceeds the maximum of {max_size}")
    raw = _loads(bytes(data))
    if not isinstance(raw, dict):
        raise SchemaError(f"expected a CBOR map, got {type(raw).__name__}")
    version = raw.get("v")
    if type(version) is not int:
        raise SchemaError("missing or non-integer wire format version 'v'")
    if version != WIRE_VERSION:
        raise SchemaError(f"unknown wire format version {version} (this build reads 1)")
    if raw.keys() != _KEYS:
        missing = sorted(_KEYS - raw.keys())
        extra = sorted(str(k)[:40] for k in raw.keys() - _KEYS)
        raise SchemaError(f"envelope keys differ: missing {missing}, unexpected {extra}")
    event_type = raw["type"]
    schema_version = raw["schema"]
    if not isinstance(event_type, str):
        raise SchemaError(f"'type' must be text, got {type(event_type).__name__}")
    if type(schema_version) is not int or schema_version < 1:
        raise SchemaError("'schema' must be an integer >= 1")
    reg = registry or default_registry
    current, payload = reg.payload_from_wire(event_type, schema_version, raw["payload"])
    # Envelope validates every metadata field and raises SchemaError itself.
    return Envelope(
        id=raw["id"],
        schema_version=current,
        event_type=event_type,
        correlation_id=raw["corr"],
        causation_id=raw["cause"],
        tenant_id=raw["tenant"],
        trace_id=raw["trace"],
        timestamp=raw["ts"],
        actor_id=raw["actor"],
        payload=payload,
        retry_count=raw["retry"],
    )


def _loads(data: bytes) -> Any:
    if not data:
        raise SchemaError("empty input")
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag,
            semantic_decoders=_SEMANTIC_DECODERS,
            max_depth=MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
        value = decoder.decode()
    except Exception as exc:  # cbor2 raises CBORDecodeError, but also ValueError & co.
        raise SchemaError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise SchemaError(f"{len(data) - stream.tell()} trailing bytes after the envelope")
    return value
