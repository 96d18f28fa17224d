"""The event envelope: identity, causality and routing metadata around a typed payload.

An :class:`Envelope` is immutable and validated on construction, so every
instance that exists is encodable metadata-wise; whether its payload matches a
registered schema is checked by the codec (which knows the registry).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._exceptions import SchemaError
from ._registry import SchemaRegistry, default_registry

__all__ = ("Envelope", "validate_traceparent")

# W3C Trace Context, section 3.2: version "-" trace-id "-" parent-id "-" flags,
# lowercase hex only.  Versions after 00 may append "-"-separated fields.
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?"
)


def validate_traceparent(value: str) -> str:
    """Return ``value`` if it is a valid W3C ``traceparent`` header, else raise SchemaError.

    >>> validate_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    """
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        raise SchemaError(f"trace_id is not a W3C traceparent: {value[:80]!r}")
    version = match["version"]
    if version == "ff":
        raise SchemaError("trace_id: traceparent version ff is forbidden")
    if version == "00" and match["rest"] is not None:
        raise SchemaError("trace_id: traceparent version 00 has exactly four fields")
    if match["trace"] == "0" * 32 or match["parent"] == "0" * 16:
        raise SchemaError("trace_id: an all-zero trace-id or parent-id is invalid")
    return value


def _check(name: str, value: object, kind: type | tuple[type, ...], optional: bool) -> None:
    if value is None and optional:
        return
    # bool is an int subclass; a bool where a count belongs is always a mistake.
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        suffix = " or None" if optional else ""
        raise SchemaError(f"{name}: expected {expected}{suffix}, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event: a registered payload plus identity, causality and routing metadata.

    Invariants (checked on construction, so also after ``dataclasses.replace``):
    ids are UUIDs, ``timestamp`` is aware and stored in UTC, ``trace_id`` is a
    W3C ``traceparent`` or None, ``schema_version >= 1``, ``retry_count >= 0``.

    Build envelopes with :meth:`new` (a root event) or :meth:`caused` (an event
    caused by this one)::

        @event("product.created", version=1)
        @dataclass(frozen=True)
        class ProductCreated:
            sku: str

        root = Envelope.new(ProductCreated("sku-1"), tenant_id="acme")
        child = root.caused(StockReserved("sku-1", 3))
        assert child.correlation_id == root.correlation_id
        assert child.causation_id == root.id
    """

    id: uuid.UUID
    schema_version: int
    event_type: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None
    tenant_id: str | None
    trace_id: str | None
    timestamp: datetime
    actor_id: str | None
    payload: Any
    retry_count: int = 0

    def __post_init__(self) -> None:
        _check("id", self.id, uuid.UUID, False)
        _check("schema_version", self.schema_version, int, False)
        if self.schema_version < 1:
            raise SchemaError(f"schema_version must be >= 1, got {self.schema_version}")
        _check("event_type", self.event_type, str, False)
        if not self.event_type:
            raise SchemaError("event_type must not be empty")
        _check("correlation_id", self.correlation_id, uuid.UUID, False)
        _check("causation_id", self.causation_id, uuid.UUID, True)
        _check("tenant_id", self.tenant_id, str, True)
        _check("trace_id", self.trace_id, str, True)
        if self.trace_id is not None:
            validate_traceparent(self.trace_id)
        _check("timestamp", self.timestamp, datetime, False)
        offset = self.timestamp.utcoffset()
        if offset is None:
            raise SchemaError("timestamp must be timezone-aware (UTC)")
        if self.timestamp.tzinfo is not UTC:
            # One instant, one representation: the wire format and equality of
            # encodings rely on every stored timestamp being in UTC.
            try:
                utc = self.timestamp.astimezone(UTC)
            except OverflowError:
                raise SchemaError("timestamp is out of range once converted to UTC") from None
            object.__setattr__(self, "timestamp", utc)
        _check("actor_id", self.actor_id, str, True)
        _check("retry_count", self.retry_count, int, False)
        if self.retry_count < 0:
            raise SchemaError(f"retry_count must be >= 0, got {self.retry_count}")

    @classmethod
    def new(
        cls,
        payload: Any,
        *,
        tenant_id: str | None = None,
        trace_id: str | None = None,
        actor_id: str | None = None,
        correlation_id: uuid.UUID | None = None,
        timestamp: datetime | None = None,
        registry: SchemaRegistry | None = None,
    ) -> Envelope:
        """Wrap ``payload`` in a root envelope (no cause).

        ``event_type`` and ``schema_version`` come from the payload class's
        registration in ``registry`` (the default registry unless given); an
        unregistered payload raises SchemaError. ``id`` is a fresh uuid4; the
        correlation id defaults to that id, so a root event starts its own
        conversation. ``timestamp`` defaults to now (UTC) and is the clock seam
        for tests.
        """
        schema = (registry or default_registry).schema_of(payload)
        event_id = uuid.uuid4()
        return cls(
            id=event_id,
            schema_version=schema.version,
            event_type=schema.event_type,
            correlation_id=event_id if correlation_id is None else correlation_id,
            causation_id=None,
            tenant_id=tenant_id,
            trace_id=trace_id,
            timestamp=datetime.now(UTC) if timestamp is None else timestamp,
            actor_id=actor_id,
            payload=payload,
        )

    def caused(
        self,
        payload: Any,
        *,
        actor_id: str | None = None,
        timestamp: datetime | None = None,
        registry: SchemaRegistry | None = None,
    ) -> Envelope:
        """Wrap ``payload`` in an envelope caused by this one.

        The new envelope keeps this one's correlation id, tenant and trace, and
        names this envelope's id as its causation id. ``actor_id`` is the path
        of the actor emitting the new event (not inherited: it is usually a
        different actor).
        """
        schema = (registry or default_registry).schema_of(payload)
        return Envelope(
            id=uuid.uuid4(),
            schema_version=schema.version,
            event_type=schema.event_type,
            correlation_id=self.correlation_id,
            causation_id=self.id,
            tenant_id=self.tenant_id,
            trace_id=self.trace_id,
            timestamp=datetime.now(UTC) if timestamp is None else timestamp,
            actor_id=actor_id,
            payload=payload,
        )

    def with_retry(self) -> Envelope:
        """Return a copy with ``retry_count`` one higher (the same event, redelivered)."""
        return dataclasses.replace(self, retry_count=self.retry_count + 1)
