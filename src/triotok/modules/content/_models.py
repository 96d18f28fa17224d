"""The content module's HTTP models: what ``/api/content/nodes`` reads and answers.

msgspec Structs, declared once: the HTTP layer validates request bodies and
queries with them, and ``/openapi.json`` publishes them as the components
``ContentNode``, ``ContentNodeCreate``,
``ContentNodeUpdate``, ``ContentTranslation``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from ..._text import NAME_PATTERN, whole_match
from ._model import KIND_PATTERN, LOCALE_PATTERN, SLUG_PATTERN, TAG_PATTERN

__all__ = (
    "ContentNode",
    "ContentNodeCreate",
    "ContentNodeUpdate",
    "ContentTranslation",
)

Kind = Annotated[
    str,
    Meta(
        pattern=whole_match(KIND_PATTERN),
        examples=["page"],
        description="post, page or a tenant-defined kind",
    ),
]
Locale = Annotated[str, Meta(pattern=whole_match(LOCALE_PATTERN), examples=["en"])]
Slug = Annotated[
    str, Meta(pattern=whole_match(SLUG_PATTERN), max_length=200, examples=["about-us"])
]
Tag = Annotated[str, Meta(pattern=whole_match(TAG_PATTERN), examples=["news"])]
Title = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=300,
        pattern=NAME_PATTERN,
        description="No control or invisible format characters",
    ),
]
Status = Literal["draft", "published", "archived"]
BodyFormat = Literal["markdown", "html"]
NodeId = Annotated[
    str,
    Meta(
        extra_json_schema={"format": "uuid"},
        examples=["0b7e4a5e-4a1c-4a43-9a35-1f7f4ec7f0a1"],
    ),
]
Position = Annotated[int, Meta(ge=0, le=1_000_000)]
Version = Annotated[int, Meta(ge=1, le=2**31 - 1)]
Translations = Annotated[
    dict[Locale, "ContentTranslation"],
    Meta(min_length=1, max_length=50, description="One translation per BCP 47 locale"),
]
Tags = Annotated[list[Tag], Meta(max_length=50)]

_TRANSLATION: dict[str, Any] = {
    "title": "About us",
    "slug": "about-us",
    "excerpt": "Who we are",
    "body": "# About us\n\nWe make things.",
    "body_format": "markdown",
}
_NODE: dict[str, Any] = {
    "id": "0b7e4a5e-4a1c-4a43-9a35-1f7f4ec7f0a1",
    "kind": "page",
    "status": "draft",
    "translations": {"en": _TRANSLATION},
    "parent_id": None,
    "position": None,
    "tags": ["company"],
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:00:00+00:00",
    "published_at": None,
    "version": 1,
}


class ContentTranslation(Struct, frozen=True, forbid_unknown_fields=True):
    """One locale's text; the body is stored as given and never executed."""

    title: Title
    slug: Slug
    excerpt: Annotated[str, Meta(max_length=2000)] = ""
    body: Annotated[str, Meta(max_length=500_000)] = ""
    body_format: BodyFormat = "markdown"

    EXAMPLE: ClassVar[dict[str, Any]] = _TRANSLATION


class ContentNode(Struct, frozen=True):
    """A content node; ``version`` is its ``ETag``."""

    id: NodeId
    kind: str
    status: Status
    translations: dict[str, ContentTranslation]
    parent_id: NodeId | None
    position: int | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _NODE


class ContentNodeCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A new node (created as a draft)."""

    kind: Kind
    translations: Translations
    parent_id: NodeId | None = None
    position: Position | None = None
    tags: Tags = []

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "kind": "page",
        "translations": {"en": _TRANSLATION},
        "tags": ["company"],
    }


class ContentNodeUpdate(Struct, frozen=True, forbid_unknown_fields=True):
    """Changes to a node; the version it is based on goes here or in ``If-Match``."""

    kind: Kind | UnsetType = UNSET
    translations: Translations | UnsetType = UNSET
    parent_id: NodeId | UnsetType | None = UNSET
    position: Position | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET
    version: Version | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"tags": ["company", "team"], "version": 1}
