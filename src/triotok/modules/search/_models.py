"""The search module's HTTP models: the lists served from the read models, search, rebuilds.

msgspec Structs, declared once: the HTTP layer validates queries and bodies
with them and ``/openapi.json`` publishes them. The list pages keep the
shapes the products and content APIs answered before the lists moved here
(``ProductPage``, ``ContentNodePage``); their items are the read models'
(``ListedProduct``, ``ListedContentNode``: the same fields as ``Product``
and ``ContentNode``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from ..._text import whole_match

__all__ = (
    "ContentHit",
    "ContentNodePage",
    "ContentNodeQuery",
    "ListedContentNode",
    "ListedProduct",
    "PriceBucket",
    "ProductHit",
    "ProductPage",
    "ProductQuery",
    "RebuildList",
    "RebuildRequest",
    "RebuildStatus",
    "SearchFacets",
    "SearchHighlights",
    "SearchPage",
    "SearchQuery",
)

_UUID = Meta(
    extra_json_schema={"format": "uuid"}, examples=["6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70"]
)
Id = Annotated[str, _UUID]
Cursor = Annotated[str, Meta(pattern="^[0-9a-f]{32}$")]
Limit = Annotated[int, Meta(ge=1, le=100)]
Token = Annotated[
    int,
    Meta(
        ge=1,
        le=2**63 - 1,
        description="A consistency token (X-Consistency-Token of a write): wait until the"
        " index has applied it (bounded; a stale answer says X-Consistency-Stale: true)",
    ),
]
Sku = Annotated[str, Meta(pattern=whole_match(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"))]
Kind = Annotated[str, Meta(pattern=whole_match(r"[a-z][a-z0-9_-]{0,31}"), examples=["page"])]
Locale = Annotated[
    str,
    Meta(
        pattern=whole_match(
            r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*"
        ),
        examples=["en"],
    ),
]
Tag = Annotated[str, Meta(pattern=whole_match(r"[a-z0-9][a-z0-9_-]{0,47}"), examples=["news"])]
Price = Annotated[int, Meta(ge=0, le=10**12, description="Minor units (cents)")]
TenantId = Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]

_LISTED_PRODUCT: dict[str, Any] = {
    "id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70",
    "sku": "MUG-BLUE-350",
    "title": "Blue mug, 350 ml",
    "description": "Stoneware, dishwasher safe.",
    "price": 1290,
    "currency": "EUR",
    "status": "active",
    "attributes": {"color": "blue", "volume_ml": 350},
    "on_hand": 40,
    "reserved": 3,
    "available": 37,
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:00:00+00:00",
    "version": 4,
}
_TRANSLATION = {
    "title": "About us",
    "slug": "about-us",
    "excerpt": "Who we are",
    "body": "# About us\n\nWe make things.",
    "body_format": "markdown",
}
_LISTED_NODE: dict[str, Any] = {
    "id": "0b7e4a5e-4a1c-4a43-9a35-1f7f4ec7f0a1",
    "kind": "page",
    "status": "published",
    "translations": {"en": _TRANSLATION},
    "parent_id": None,
    "position": None,
    "tags": ["company"],
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:00:00+00:00",
    "published_at": "2024-05-01T12:00:00+00:00",
    "version": 2,
}

# ---------------------------------------------------------------- lists


class ListedProduct(Struct, frozen=True):
    """A product as the read model lists it (the fields of ``Product``)."""

    id: Id
    sku: str
    title: str
    description: str
    price: int
    currency: str
    status: Literal["draft", "active", "archived"]
    attributes: dict[str, str | int | bool]
    on_hand: int
    reserved: int
    available: int
    created_at: datetime
    updated_at: datetime
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _LISTED_PRODUCT


class ProductPage(Struct, frozen=True):
    """A page of products; ``next_cursor`` continues it (``null``: the last page)."""

    items: list[ListedProduct]
    next_cursor: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_LISTED_PRODUCT], "next_cursor": None}


class ProductQuery(Struct, frozen=True):
    """``GET /api/products``: filters, keyset pagination (``cursor`` is opaque), ``min_token``."""

    status: Literal["draft", "active", "archived"] | None = None
    sku: Sku | None = None
    limit: Limit = 50
    cursor: Cursor | None = None
    min_token: Token | None = None


class ListedTranslation(Struct, frozen=True):
    title: str
    slug: str
    excerpt: str
    body: str
    body_format: Literal["markdown", "html"]


class ListedContentNode(Struct, frozen=True):
    """A content node as the read model lists it (the fields of ``ContentNode``)."""

    id: Id
    kind: str
    status: Literal["draft", "published", "archived"]
    translations: dict[str, ListedTranslation]
    parent_id: Id | None
    position: int | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _LISTED_NODE


class ContentNodePage(Struct, frozen=True):
    """A page of nodes; ``next_cursor`` continues it (``null``: the last page)."""

    items: list[ListedContentNode]
    next_cursor: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_LISTED_NODE], "next_cursor": None}


class ContentNodeQuery(Struct, frozen=True):
    """``GET /api/content/nodes``: filters, keyset pagination, ``min_token``."""

    status: Literal["draft", "published", "archived"] | None = None
    kind: Kind | None = None
    locale: Locale | None = None
    tag: Tag | None = None
    limit: Limit = 50
    cursor: Cursor | None = None
    min_token: Token | None = None


# ---------------------------------------------------------------- search


class SearchQuery(Struct, frozen=True):
    """``GET /api/search``. Also ``attr.<name>=<value>`` (products; repeat for either value).

    ``q``: words (all of them), ``"a phrase"``, ``prefix*``, ``-excluded``;
    empty: every row the filters keep. ``sort=relevance`` needs ``q`` (else
    by id); ``price`` sorts products, ``published_at`` content; ``-`` reverses.
    """

    q: Annotated[str, Meta(max_length=256)] = ""
    type: Literal["product", "content"] = "product"
    locale: Locale | None = None
    status: Literal["draft", "active", "archived", "published"] | None = None
    kind: Kind | None = None
    tag: Tag | None = None
    price_min: Price | None = None
    price_max: Price | None = None
    sort: Literal["relevance", "price", "-price", "published_at", "-published_at"] = "relevance"
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    cursor: Annotated[str, Meta(max_length=400, pattern="^[A-Za-z0-9_-]+$")] | None = None
    min_token: Token | None = None


class SearchHighlights(Struct, frozen=True):
    """HTML: the text escaped, the words searched for in ``<mark>``."""

    title: str
    snippet: str


class ProductHit(Struct, frozen=True, tag="product", tag_field="type"):
    """A product found: the listed fields, its score and highlights."""

    id: Id
    sku: str
    title: str
    description: str
    price: int
    currency: str
    status: str
    attributes: dict[str, str | int | bool]
    on_hand: int
    reserved: int
    available: int
    created_at: datetime
    updated_at: datetime
    version: int
    score: float | None
    highlights: SearchHighlights


class ContentHit(Struct, frozen=True, tag="content", tag_field="type"):
    """A content node found in one locale: its fields there, its score and highlights."""

    id: Id
    locale: str
    kind: str
    status: str
    title: str
    slug: str
    excerpt: str
    tags: list[str]
    published_at: datetime | None
    version: int
    score: float | None
    highlights: SearchHighlights


class PriceBucket(Struct, frozen=True):
    """Products priced from ``min`` to before ``max`` (``null``: no upper bound)."""

    min: int
    max: int | None
    count: int


class SearchFacets(Struct, frozen=True):
    """Counts over every match (not only the page); the other type's facets are empty."""

    status: dict[str, int]
    kind: dict[str, int]
    tags: dict[str, int]
    attributes: dict[str, dict[str, int]]
    price: list[PriceBucket]


class SearchPage(Struct, frozen=True):
    """A page of hits, the total of matches, facets, and the cursor of the next page."""

    items: list[ProductHit | ContentHit]
    total: int
    facets: SearchFacets
    next_cursor: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "items": [
            {
                "type": "product",
                **_LISTED_PRODUCT,
                "score": 0.0759,
                "highlights": {
                    "title": "<mark>Blue</mark> <mark>mug</mark>, 350 ml",
                    "snippet": "Stoneware, dishwasher safe.",
                },
            }
        ],
        "total": 1,
        "facets": {
            "status": {"active": 1},
            "kind": {},
            "tags": {},
            "attributes": {"color": {"blue": 1}, "volume_ml": {"350": 1}},
            "price": [{"min": 1000, "max": 2500, "count": 1}],
        },
        "next_cursor": None,
    }


# ---------------------------------------------------------------- rebuilds


class RebuildRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """What to rebuild from the write tables (default: every tenant, both types)."""

    tenant: TenantId | None = None
    type: Literal["product", "content"] | None = None
    workers: Annotated[int, Meta(ge=1, le=16)] = 1
    batch_size: Annotated[int, Meta(ge=1, le=1000)] = 500

    EXAMPLE: ClassVar[dict[str, Any]] = {"tenant": "acme", "type": "product", "workers": 2}


_REBUILD: dict[str, Any] = {
    "id": 3,
    "tenant_id": "acme",
    "types": ["product"],
    "status": "running",
    "rows_done": 5200,
    "rows_total": 10000,
    "percent": 52.0,
    "rows_per_s": 4100.0,
    "eta_s": 1.2,
    "workers": 2,
    "batch_size": 500,
    "owner": "web-1:4242",
    "started_at": "2024-05-01T12:00:00+00:00",
    "finished_at": None,
    "error": None,
}


class RebuildStatus(Struct, frozen=True):
    """A rebuild: rows done of the total, this run's rate and ETA."""

    id: int
    tenant_id: str | None
    types: list[str]
    status: Literal["running", "done"]
    rows_done: int
    rows_total: int
    percent: float
    rows_per_s: float
    eta_s: float | None
    workers: int
    batch_size: int
    owner: str
    started_at: str
    finished_at: str | None
    error: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = _REBUILD


class RebuildList(Struct, frozen=True):
    """The running rebuilds and the most recent others, newest first."""

    items: list[RebuildStatus]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_REBUILD]}
