"""What ``tx.publish`` writes: one outbox row per event, shared by both backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._exceptions import InvalidConfig

__all__ = ("EncodedEvent", "check_claim", "encode_event", "outbox_head")


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """The columns of an outbox row that come from the event itself."""

    event_id: str
    event_type: str
    tenant_id: str | None
    payload: bytes


def encode_event(
    event: Any, event_id: str | None, event_type: str | None, tenant_id: str | None
) -> EncodedEvent:
    """Turn an ``Envelope`` (encoded as CBOR here) or pre-encoded bytes into a row.

    For an envelope, the id, type and tenant come from the envelope; explicit
    arguments must agree with it. For bytes, ``event_id`` and ``event_type``
    are required because the store does not decode payloads.
    """
    if isinstance(event, bytes | bytearray | memoryview):
        if not event_id:
            raise InvalidConfig("event_id", "required when publishing pre-encoded bytes")
        if not event_type:
            raise InvalidConfig("event_type", "required when publishing pre-encoded bytes")
        return EncodedEvent(str(event_id), event_type, tenant_id, bytes(event))
    # Imported here: the transport layer sits below the store, but a store that
    # only ever publishes bytes should not pay for importing the codec.
    from ..transport import Envelope, encode

    if not isinstance(event, Envelope):
        raise InvalidConfig(
            "event", f"expected a triotok.transport.Envelope or bytes, got {type(event).__name__}"
        )
    for name, given, actual in (
        ("event_id", event_id, str(event.id)),
        ("event_type", event_type, event.event_type),
        ("tenant_id", tenant_id, event.tenant_id),
    ):
        if given is not None and str(given) != actual:
            raise InvalidConfig(name, f"{given!r} disagrees with the envelope's {actual!r}")
    return EncodedEvent(str(event.id), event.event_type, event.tenant_id, encode(event))


def check_claim(limit: int) -> None:
    """A claim takes at least one row (SQLite would read ``LIMIT -1`` as no limit)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidConfig("limit", f"must be an integer >= 1, got {limit!r}")


async def outbox_head(store: Any) -> int:
    """The newest outbox position (0 when the outbox is empty): a consistency token.

    Read after a write committed, it is at or after the write's own event, so
    "the index has applied this position" covers that event.
    """
    head = await store.fetchval("SELECT max(id) FROM outbox")
    return 0 if head is None else int(head)
