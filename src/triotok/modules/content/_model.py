"""Content nodes: the record, its validation rules, and the events its changes publish.

A node is a post, a page or a tenant-defined kind, with one translation per
locale (BCP 47 tag). Bodies are stored exactly as given (``markdown`` or
``html``) and never rendered or executed here. Every event carries the node
as it is after the change (:class:`NodeSnapshot`), so read models can be
built from events alone.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..._exceptions import InvalidInput
from ..._text import NAME_PATTERN
from ...transport import event
from ._lifecycle import Status

__all__ = (
    "BODY_FORMATS",
    "KIND_PATTERN",
    "LOCALE_PATTERN",
    "SLUG_PATTERN",
    "ContentNode",
    "NodeArchived",
    "NodeCreated",
    "NodeDeleted",
    "NodePublished",
    "NodeRestored",
    "NodeSnapshot",
    "NodeUnpublished",
    "NodeUpdated",
    "Translation",
    "TranslationSnapshot",
    "check_kind",
    "check_locale",
    "check_slug",
    "check_tag",
    "parse_node_id",
)

#: ``post``, ``page`` or a tenant-defined kind.
KIND_PATTERN = r"[a-z][a-z0-9_-]{0,31}"
#: A BCP 47 language tag as clients send them: ``en``, ``pt-BR``, ``zh-Hant-TW``, ``es-419``.
LOCALE_PATTERN = r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*"
#: Lowercase words joined by single hyphens.
SLUG_PATTERN = r"[a-z0-9]+(-[a-z0-9]+)*"
#: Tags: short lowercase labels.
TAG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,47}"
BODY_FORMATS = ("markdown", "html")

_KIND = re.compile(KIND_PATTERN)
_LOCALE = re.compile(LOCALE_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_TITLE = re.compile(NAME_PATTERN)


def _check(pattern: re.Pattern[str], value: object, field_name: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(f"{field_name} {shown} is not {what}", field=field_name)
    return value


def check_kind(value: object) -> str:
    return _check(_KIND, value, "kind", f"a kind ({KIND_PATTERN})")


def check_locale(value: object, field_name: str = "locale") -> str:
    return _check(_LOCALE, value, field_name, "a BCP 47 language tag")


def check_slug(value: object, field_name: str = "slug") -> str:
    if isinstance(value, str) and len(value) > 200:
        raise InvalidInput(f"{field_name} is longer than 200 characters", field=field_name)
    return _check(_SLUG, value, field_name, "a slug (lowercase words joined by '-')")


def check_tag(value: object) -> str:
    return _check(_TAG, value, "tags", f"a tag ({TAG_PATTERN})")


def parse_node_id(value: str) -> str:
    """The canonical form of a node id (a UUID), or :class:`InvalidInput`."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput(f"{value[:60]!r} is not a node id (a UUID)", field="id") from None


@dataclass(frozen=True, slots=True)
class Translation:
    """One locale's text of a node."""

    locale: str
    title: str
    slug: str
    excerpt: str = ""
    body: str = ""
    body_format: str = "markdown"

    def __post_init__(self) -> None:
        check_locale(self.locale)
        if not self.title or len(self.title) > 300 or not _TITLE.fullmatch(self.title):
            raise InvalidInput(
                "title must be 1-300 characters without control or format characters",
                field=f"translations.{self.locale}.title",
            )
        check_slug(self.slug, f"translations.{self.locale}.slug")
        if self.body_format not in BODY_FORMATS:
            raise InvalidInput(
                f"body_format must be one of {', '.join(BODY_FORMATS)}",
                field=f"translations.{self.locale}.body_format",
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "slug": self.slug,
            "excerpt": self.excerpt,
            "body": self.body,
            "body_format": self.body_format,
        }


@dataclass(frozen=True, slots=True)
class ContentNode:
    """A node as stored; ``version`` grows by one with every accepted command."""

    tenant_id: str
    id: str
    kind: str
    status: Status
    translations: tuple[Translation, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 1
    parent_id: str | None = None
    position: int | None = None
    tags: tuple[str, ...] = ()
    published_at: datetime | None = None

    def translation(self, locale: str) -> Translation | None:
        return next((t for t in self.translations if t.locale == locale), None)

    def with_changes(self, **changes: Any) -> ContentNode:
        return replace(self, **changes)

    @property
    def etag(self) -> str:
        """The strong entity tag of this version (what ``If-Match`` compares)."""
        return f'"{self.version}"'

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "translations": {t.locale: t.as_dict() for t in self.translations},
            "parent_id": self.parent_id,
            "position": self.position,
            "tags": list(self.tags),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "published_at": None if self.published_at is None else self.published_at.isoformat(),
            "version": self.version,
        }

    def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(
            node_id=uuid.UUID(self.id),
            kind=self.kind,
            status=self.status.value,
            translations=tuple(
                TranslationSnapshot(t.locale, t.title, t.slug, t.excerpt, t.body, t.body_format)
                for t in self.translations
            ),
            parent_id=None if self.parent_id is None else uuid.UUID(self.parent_id),
            position=self.position,
            tags=self.tags,
            created_at=self.created_at,
            updated_at=self.updated_at,
            published_at=self.published_at,
            version=self.version,
        )


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class TranslationSnapshot:
    """A translation inside an event."""

    locale: str
    title: str
    slug: str
    excerpt: str
    body: str
    body_format: str


# Event payload types stay out of the package's public names: the schema
# registry resolves their annotations in the module that defines them, which
# ``fixup_module_metadata`` would rename.
@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """The node after the change that an event announces."""

    node_id: uuid.UUID
    kind: str
    status: str
    translations: tuple[TranslationSnapshot, ...]
    parent_id: uuid.UUID | None
    position: int | None
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    version: int


@event("content.node.created")
@dataclass(frozen=True, slots=True)
class NodeCreated:
    """A node was created (as a draft)."""

    node: NodeSnapshot


@event("content.node.updated")
@dataclass(frozen=True, slots=True)
class NodeUpdated:
    """A node's content changed (``fields``: the top-level fields the command set)."""

    node: NodeSnapshot
    fields: tuple[str, ...] = field(default=())


@event("content.node.published")
@dataclass(frozen=True, slots=True)
class NodePublished:
    """A draft went live."""

    node: NodeSnapshot


@event("content.node.unpublished")
@dataclass(frozen=True, slots=True)
class NodeUnpublished:
    """A published node went back to draft."""

    node: NodeSnapshot


@event("content.node.archived")
@dataclass(frozen=True, slots=True)
class NodeArchived:
    """A published node was archived."""

    node: NodeSnapshot


@event("content.node.restored")
@dataclass(frozen=True, slots=True)
class NodeRestored:
    """An archived node came back as a draft."""

    node: NodeSnapshot


@event("content.node.deleted")
@dataclass(frozen=True, slots=True)
class NodeDeleted:
    """A draft or archived node was deleted (``version``: its last version)."""

    node_id: uuid.UUID
    version: int
