"""What the read models are built from: documents, from events or from the write tables.

The search module imports no other module: it reads the payloads of
``content.*``, ``product.*`` and ``inventory.*`` events by their field names
(the event contract, pinned by ``tests/transport/event_contract.json``) and
the write tables by their column names, and turns both into the same
:class:`ProductDoc`, :class:`StockLevels`, :class:`NodeDoc` and
:class:`NodeGone` values, so an event and a rebuild apply the same way.
An event of those families that changes nothing indexed
(``inventory.rejected``) gives no document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...store import Row, parse_timestamp, row_timestamp
from ...transport import Envelope
from ._text import joined, plain_text

__all__ = (
    "Change",
    "NodeDoc",
    "NodeGone",
    "ProductDoc",
    "StockLevels",
    "TranslationDoc",
    "changes_of",
    "node_from_rows",
    "product_from_row",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ProductDoc:
    """A product as of ``version`` (fields and stock)."""

    tenant_id: str
    id: str
    sku: str
    title: str
    description: str
    price: int
    currency: str
    status: str
    attributes: Mapping[str, str | int | bool]
    on_hand: int
    reserved: int
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def search_text(self) -> tuple[str, str]:
        """(title words, the other words): what the full-text index holds, in order."""
        title = joined((self.title, self.sku))
        values = [v for v in self.attributes.values() if isinstance(v, str)]
        return title, joined((self.description, *values))

    def attribute_values(self) -> list[tuple[str, str]]:
        """(name, value as text) per attribute: what filters and facets compare."""
        return [(name, attribute_text(value)) for name, value in sorted(self.attributes.items())]


def attribute_text(value: object) -> str:
    """An attribute value as filters name it: ``blue``, ``350``, ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class StockLevels:
    """A product's stock as of ``version`` (an inventory event), changed at ``at``."""

    tenant_id: str
    product_id: str
    on_hand: int
    reserved: int
    version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class TranslationDoc:
    locale: str
    title: str
    slug: str
    excerpt: str
    body: str
    body_format: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "slug": self.slug,
            "excerpt": self.excerpt,
            "body": self.body,
            "body_format": self.body_format,
        }


@dataclass(frozen=True, slots=True)
class NodeDoc:
    """A content node as of ``version``."""

    tenant_id: str
    id: str
    kind: str
    status: str
    translations: tuple[TranslationDoc, ...]
    parent_id: str | None
    position: int | None
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    version: int

    def document(self) -> dict[str, Any]:
        """The node as ``GET /api/content/nodes`` lists it (the content API's shape)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "translations": {t.locale: t.as_dict() for t in self.translations},
            "parent_id": self.parent_id,
            "position": self.position,
            "tags": list(self.tags),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "published_at": None if self.published_at is None else self.published_at.isoformat(),
            "version": self.version,
        }

    @property
    def published_key(self) -> int:
        """``published_at`` in microseconds since 1970 (0: never published): the sort key."""
        if self.published_at is None:
            return 0
        delta = self.published_at - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    @staticmethod
    def search_text(translation: TranslationDoc) -> tuple[str, str, str]:
        """(plain body, title words, the other words) of one locale."""
        body = plain_text(translation.body, translation.body_format)
        return body, joined((translation.title,)), joined((translation.excerpt, body))


@dataclass(frozen=True, slots=True)
class NodeGone:
    """A node deleted at ``version`` (kept as a tombstone)."""

    tenant_id: str
    id: str
    version: int


Change = ProductDoc | StockLevels | NodeDoc | NodeGone


# ---------------------------------------------------------------- from events


def _product(tenant_id: str, p: Any) -> ProductDoc:
    return ProductDoc(
        tenant_id=tenant_id,
        id=str(p.product_id),
        sku=str(p.sku),
        title=str(p.title),
        description=str(p.description),
        price=int(p.price),
        currency=str(p.currency),
        status=str(p.status),
        attributes=dict(p.attributes),
        on_hand=int(p.on_hand),
        reserved=int(p.reserved),
        created_at=row_timestamp(p.created_at),
        updated_at=row_timestamp(p.updated_at),
        version=int(p.version),
    )


def _stock(tenant_id: str, line: Any, at: datetime) -> StockLevels:
    product_id = str(line.product_id)
    return StockLevels(
        tenant_id, product_id, int(line.on_hand), int(line.reserved), int(line.version), at
    )


def _node(tenant_id: str, n: Any) -> NodeDoc:
    return NodeDoc(
        tenant_id=tenant_id,
        id=str(n.node_id),
        kind=str(n.kind),
        status=str(n.status),
        translations=tuple(
            sorted(
                (
                    TranslationDoc(
                        str(t.locale),
                        str(t.title),
                        str(t.slug),
                        str(t.excerpt),
                        str(t.body),
                        str(t.body_format),
                    )
                    for t in n.translations
                ),
                key=lambda t: t.locale,
            )
        ),
        parent_id=None if n.parent_id is None else str(n.parent_id),
        position=None if n.position is None else int(n.position),
        tags=tuple(sorted(str(t) for t in n.tags)),
        created_at=row_timestamp(n.created_at),
        updated_at=row_timestamp(n.updated_at),
        published_at=parse_timestamp(n.published_at),
        version=int(n.version),
    )


def changes_of(envelope: Envelope) -> list[Change]:
    """The documents an event carries (empty: nothing indexed changes)."""
    tenant_id = envelope.tenant_id
    if tenant_id is None:
        return []
    payload = envelope.payload
    kind = envelope.event_type
    if kind.startswith("content."):
        if kind == "content.node.deleted":
            return [NodeGone(tenant_id, str(payload.node_id), int(payload.version))]
        node = getattr(payload, "node", None)
        return [] if node is None else [_node(tenant_id, node)]
    if kind.startswith("product."):
        product = getattr(payload, "product", None)
        return [] if product is None else [_product(tenant_id, product)]
    if kind.startswith("inventory."):
        at = envelope.timestamp
        lines: Sequence[Any] = getattr(payload, "lines", ())
        line = getattr(payload, "line", None)
        if line is not None:
            lines = (line,)
        return [_stock(tenant_id, line, at) for line in lines]
    return []


# ---------------------------------------------------------------- from the write tables


def product_from_row(row: Row) -> ProductDoc:
    """A ``commerce_products`` row as a document."""
    attributes = row["attributes"]
    return ProductDoc(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        sku=str(row["sku"]),
        title=str(row["title"]),
        description=str(row["description"]),
        price=int(row["price"]),
        currency=str(row["currency"]),
        status=str(row["status"]),
        attributes=json.loads(attributes) if isinstance(attributes, str) else dict(attributes),
        on_hand=int(row["on_hand"]),
        reserved=int(row["reserved"]),
        created_at=row_timestamp(row["created_at"]),
        updated_at=row_timestamp(row["updated_at"]),
        version=int(row["version"]),
    )


def node_from_rows(row: Row, translations: Sequence[Row], tags: Sequence[Row]) -> NodeDoc:
    """A ``content_nodes`` row with its translations and tags as a document."""
    return NodeDoc(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        translations=tuple(
            sorted(
                (
                    TranslationDoc(
                        str(t["locale"]),
                        str(t["title"]),
                        str(t["slug"]),
                        str(t["excerpt"]),
                        str(t["body"]),
                        str(t["body_format"]),
                    )
                    for t in translations
                ),
                key=lambda t: t.locale,
            )
        ),
        parent_id=None if row["parent_id"] is None else str(row["parent_id"]),
        position=None if row["position"] is None else int(row["position"]),
        tags=tuple(sorted(str(t["tag"]) for t in tags)),
        created_at=row_timestamp(row["created_at"]),
        updated_at=row_timestamp(row["updated_at"]),
        published_at=parse_timestamp(row["published_at"]),
        version=int(row["version"]),
    )
