"""Envelope construction, causality helpers and metadata validation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from tests.transport.strategies import REGISTRY, Pinged
from tests.transport.test_codec import TRACE, ping_envelope
from triotok.transport import Envelope, SchemaError, validate_traceparent

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_new_takes_type_and_version_from_the_registration() -> None:
    envelope = Envelope.new(Pinged(1, "a"), registry=REGISTRY, tenant_id="acme", trace_id=TRACE,
                            actor_id="/user/a", timestamp=T0)  # fmt: skip
    assert (envelope.event_type, envelope.schema_version) == ("test.pinged", 1)
    assert envelope.id.version == 4
    assert envelope.correlation_id == envelope.id  # a root event starts its own conversation
    assert envelope.causation_id is None
    assert (envelope.tenant_id, envelope.trace_id, envelope.actor_id) == ("acme", TRACE, "/user/a")
    assert envelope.timestamp == T0
    assert envelope.retry_count == 0


def test_new_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    envelope = Envelope.new(Pinged(1, "a"), registry=REGISTRY)
    assert before <= envelope.timestamp <= datetime.now(UTC)
    assert envelope.timestamp.tzinfo is UTC


def test_new_with_explicit_correlation() -> None:
    envelope = Envelope.new(Pinged(1, "a"), registry=REGISTRY, correlation_id=UUID(int=9))
    assert envelope.correlation_id == UUID(int=9)
    assert envelope.id != UUID(int=9)


def test_new_refuses_unregistered_payloads() -> None:
    with pytest.raises(SchemaError, match="not a registered event payload"):
        Envelope.new(object(), registry=REGISTRY)


def test_caused_keeps_the_conversation() -> None:
    parent = ping_envelope()
    child = parent.caused(Pinged(2, "b"), registry=REGISTRY, actor_id="/user/b", timestamp=T0)
    assert child.correlation_id == parent.correlation_id
    assert child.causation_id == parent.id
    assert child.id not in (parent.id, parent.correlation_id)
    assert (child.tenant_id, child.trace_id) == (parent.tenant_id, parent.trace_id)
    assert (child.actor_id, child.timestamp, child.retry_count) == ("/user/b", T0, 0)
    assert child.payload == Pinged(2, "b")


def test_with_retry() -> None:
    envelope = ping_envelope()
    again = envelope.with_retry()
    assert again.retry_count == envelope.retry_count + 1
    assert dataclasses.replace(again, retry_count=envelope.retry_count) == envelope


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ping_envelope().retry_count = 5  # type: ignore[misc]


def test_timestamp_normalised_to_utc() -> None:
    local = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    envelope = dataclasses.replace(ping_envelope(), timestamp=local)
    assert envelope.timestamp.tzinfo is UTC
    assert envelope.timestamp == T0


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"id": "x"}, "id: expected UUID, got str"),
        ({"schema_version": 0}, "schema_version must be >= 1"),
        ({"schema_version": True}, "schema_version: expected int, got bool"),
        ({"event_type": ""}, "event_type must not be empty"),
        ({"timestamp": datetime(2024, 1, 1)}, "timestamp must be timezone-aware"),
        ({"timestamp": "2024-01-01"}, "timestamp: expected datetime"),
        ({"retry_count": -1}, "retry_count must be >= 0"),
        ({"tenant_id": 3}, "tenant_id: expected str or None"),
    ],
)
def test_metadata_validation(changes: dict[str, object], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        dataclasses.replace(ping_envelope(), **changes)


@pytest.mark.parametrize(
    "value",
    [
        TRACE,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future-field",
    ],
)
def test_valid_traceparents(value: str) -> None:
    assert validate_traceparent(value) == value
    assert dataclasses.replace(ping_envelope(), trace_id=value).trace_id == value


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "not a W3C traceparent"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "not a W3C traceparent"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "not a W3C traceparent"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "not a W3C traceparent"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff is forbidden"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "exactly four fields"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "all-zero"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "all-zero"),
    ],
)
def test_invalid_traceparents(value: str, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        validate_traceparent(value)
    with pytest.raises(SchemaError, match=match):
        dataclasses.replace(ping_envelope(), trace_id=value)
