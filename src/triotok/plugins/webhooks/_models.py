"""The webhooks plugin's request and response models."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import Meta, Struct

from ..._text import whole_match

__all__ = (
    "DeadLetter",
    "DeadLetterList",
    "EndpointCreate",
    "EndpointList",
    "EndpointView",
    "Replay",
)

Pattern = Annotated[str, Meta(pattern=whole_match(r"[a-z0-9_.*?]{1,200}"))]
Url = Annotated[str, Meta(pattern=whole_match(r"https?://[^\s]{1,2000}"), max_length=2008)]


class EndpointCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A URL to deliver the events matching ``events`` (patterns) to."""

    url: Url
    events: Annotated[list[Pattern], Meta(min_length=1, max_length=20)]

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "url": "https://hooks.example.com/triotok",
        "events": ["content.node.*"],
    }


class EndpointView(Struct, frozen=True):
    """An endpoint; its ``secret`` is shown once, in the answer to its creation."""

    id: str
    url: str
    events: list[str]
    created_at: str
    secret: str | None = None

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "8d2f1c3a9b7e4d6f",
        "url": "https://hooks.example.com/triotok",
        "events": ["content.node.*"],
        "created_at": "2025-01-01T12:00:00+00:00",
        "secret": "whsec_3f0a…",
    }


class EndpointList(Struct, frozen=True):
    """The tenant's endpoints."""

    items: list[EndpointView]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [{**EndpointView.EXAMPLE, "secret": None}]}


class DeadLetter(Struct, frozen=True):
    """A delivery that failed every attempt (replay it once the receiver is fixed)."""

    id: str
    endpoint_id: str
    url: str
    event_id: str
    event_type: str
    attempts: int
    last_error: str
    failed_at: str

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "2b9c0d4e6f8a1b3c",
        "endpoint_id": "8d2f1c3a9b7e4d6f",
        "url": "https://hooks.example.com/triotok",
        "event_id": "5f0c8a52-2f31-4a8e-9f62-8f4b8c1d2e3f",
        "event_type": "content.node.published",
        "attempts": 5,
        "last_error": "HTTP 500",
        "failed_at": "2025-01-01T12:05:00+00:00",
    }


class DeadLetterList(Struct, frozen=True):
    """The tenant's failed deliveries, oldest first."""

    items: list[DeadLetter]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [DeadLetter.EXAMPLE]}


class Replay(Struct, frozen=True):
    """What a replay did: the delivery is queued again (its dead letter goes on success)."""

    id: str
    queued: bool

    EXAMPLE: ClassVar[dict[str, Any]] = {"id": "2b9c0d4e6f8a1b3c", "queued": True}
