"""The search module's routes: the read-model lists, ``/api/search``, and the operators' rebuilds.

``GET /api/products`` and ``GET /api/content/nodes`` are served from the
read models (one query a page); ``GET`` of one product or node stays with
its module (the write side), so a client always reads its own write there.
Lists and searches take ``min_token`` (a write's ``X-Consistency-Token``):
the answer waits until the index has applied it, at most
``consistency_wait`` seconds, and then says ``X-Consistency-Stale: true``
if it still has not. A restricted reader (the ``storefront`` role) sees the
public catalogue only: active products and published content nodes. The only
file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from ..._exceptions import InvalidInput, NotFound, RequestError
from ...http import Call, Reply, Route, decode_cursor, encode_cursor, json_bytes
from .._permissions import Permission
from . import _models as models
from ._monitor import StartRebuild
from ._query import parse_query
from ._reader import SearchRequest, decode_search_cursor
from ._rebuild import KINDS, RebuildOptions, latest_rebuilds, progress_of
from ._service import SearchService

__all__ = ("ROUTES", "STALE_HEADER")

#: Set (to ``true``) on a read that stopped waiting for its ``min_token``.
STALE_HEADER = "X-Consistency-Stale"
MONITOR_PATH = "/app/modules/search/index"

_ATTRIBUTE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MAX_ATTRIBUTE_FILTERS = 8
_MAX_VALUES = 20


def _service(call: Call) -> SearchService:
    return call.services.context.get(SearchService)


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


async def _consistent(call: Call, token: int | None) -> dict[str, str]:
    """Wait for ``token`` (bounded); the headers of a stale answer."""
    if token is None:
        return {}
    fresh = await _service(call).wait_for(_tenant(call), token)
    return {} if fresh else {STALE_HEADER: "true"}


# ---------------------------------------------------------------- lists


#: What a restricted reader may see of each type: the public catalogue.
_PUBLIC = {"product": "active", "content": "published"}
_EMPTY_PAGE = b'{"items":[],"next_cursor":null}'


def _visible(call: Call, kind: str, status: str | None) -> tuple[bool, str | None]:
    """Whether a restricted reader's ``status`` filter can match anything, and the filter to use."""
    if not call.restricted:
        return True, status
    public = _PUBLIC[kind]
    return status in (None, public), public


def _page_key(call: Call) -> bytes:
    # A restricted reader's answers are kept apart from everybody else's.
    return b"restricted:" + call.query_string if call.restricted else call.query_string


def _cached(call: Call) -> tuple[Reply | None, tuple[int, int]]:
    """A kept answer to this very request (never with ``min_token``), or the generation to keep."""
    pages = _service(call).pages
    tenant = _tenant(call)
    if call.query.min_token is None:
        body = pages.get(call.route.operation_id, tenant, _page_key(call))
        if body is not None:
            return Reply(body, 200), (0, 0)
    return None, pages.generation(tenant)


def _keep(call: Call, body: bytes, generation: tuple[int, int], headers: dict[str, str]) -> Reply:
    if not headers:  # a stale answer is never kept
        _service(call).pages.put(
            call.route.operation_id, _tenant(call), _page_key(call), body, generation
        )
    return Reply(body, 200, headers)


async def list_products(call: Call) -> Reply:
    query: models.ProductQuery = call.query
    cached, generation = _cached(call)
    if cached is not None:
        return cached
    headers = await _consistent(call, query.min_token)
    visible, status = _visible(call, "product", query.status)
    if not visible:
        return Reply(_EMPTY_PAGE, 200, headers)
    service = _service(call)
    after = decode_cursor(query.cursor) if query.cursor is not None else ""
    page = await service.reader().list_products(
        service.store,
        _tenant(call),
        status=status,
        sku=query.sku,
        after=after,
        limit=query.limit,
    )
    body = json_bytes({"items": page.items, "next_cursor": encode_cursor(page.after)})
    return _keep(call, body, generation, headers)


async def list_nodes(call: Call) -> Reply:
    query: models.ContentNodeQuery = call.query
    cached, generation = _cached(call)
    if cached is not None:
        return cached
    headers = await _consistent(call, query.min_token)
    visible, status = _visible(call, "content", query.status)
    if not visible:
        return Reply(_EMPTY_PAGE, 200, headers)
    service = _service(call)
    after = decode_cursor(query.cursor) if query.cursor is not None else ""
    page = await service.reader().list_nodes(
        service.store,
        _tenant(call),
        status=status,
        kind=query.kind,
        locale=query.locale,
        tag=query.tag,
        after=after,
        limit=query.limit,
    )
    # The documents are stored as the JSON the API answers: join, never re-encode.
    cursor = json_bytes(encode_cursor(page.after))
    body = b'{"items":[' + ",".join(page.documents).encode() + b'],"next_cursor":' + cursor + b"}"
    return _keep(call, body, generation, headers)


# ---------------------------------------------------------------- search


def _attributes(raw: bytes) -> dict[str, tuple[str, ...]]:
    """The ``attr.<name>=<value>`` parameters (repeated: any of the values)."""
    found: dict[str, list[str]] = {}
    for piece in raw.split(b"&"):
        name_raw, _, value_raw = piece.partition(b"=")
        if not name_raw.startswith(b"attr."):
            continue
        try:
            name = unquote_to_bytes(name_raw.replace(b"+", b" ")).decode()[5:]
            value = unquote_to_bytes(value_raw.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            raise RequestError(
                "attr.<name> parameters must be UTF-8 text", status=400, code="invalid_query"
            ) from None
        if not _ATTRIBUTE.fullmatch(name):
            raise RequestError(
                f"attr.{name[:40]}: an attribute name is {_ATTRIBUTE.pattern}",
                status=400,
                code="invalid_query",
            )
        if not value or len(value) > 200:
            raise RequestError(
                f"attr.{name}: a value is 1-200 characters", status=400, code="invalid_query"
            )
        values = found.setdefault(name, [])
        if value not in values:
            values.append(value)
        if len(found) > _MAX_ATTRIBUTE_FILTERS or len(values) > _MAX_VALUES:
            raise RequestError(
                f"at most {_MAX_ATTRIBUTE_FILTERS} attributes of {_MAX_VALUES} values each",
                status=400,
                code="invalid_query",
            )
    return {name: tuple(values) for name, values in found.items()}


_PRODUCT_ONLY = ("price_min", "price_max")
_CONTENT_ONLY = ("locale", "kind", "tag")
_STATUSES = {
    "product": ("draft", "active", "archived"),
    "content": ("draft", "published", "archived"),
}


def _request(call: Call) -> SearchRequest:
    query: models.SearchQuery = call.query
    kind = query.type
    others = _CONTENT_ONLY if kind == "product" else _PRODUCT_ONLY
    for name in others:
        if getattr(query, name) is not None:
            raise InvalidInput(f"{name} does not apply to type={kind}", field=name)
    attributes = _attributes(call.query_string)
    if attributes and kind != "product":
        raise InvalidInput("attr.<name> applies to type=product", field="attr")
    if query.sort.endswith("price") and kind != "product":
        raise InvalidInput(f"sort={query.sort} applies to type=product", field="sort")
    if query.sort.endswith("published_at") and kind != "content":
        raise InvalidInput(f"sort={query.sort} applies to type=content", field="sort")
    if query.status is not None and query.status not in _STATUSES[kind]:
        raise InvalidInput(
            f"status of type={kind} is one of {', '.join(_STATUSES[kind])}", field="status"
        )
    visible, status = _visible(call, kind, query.status)
    if not visible:  # nothing the restricted reader may see matches
        raise _NothingVisible
    low, high = query.price_min, query.price_max
    if low is not None and high is not None and low > high:
        raise InvalidInput("price_min is above price_max", field="price_min")
    request = SearchRequest(
        tenant_id=_tenant(call),
        type=kind,
        query=parse_query(query.q),
        locale=query.locale,
        status=status,
        kind=query.kind,
        tag=query.tag,
        price_min=query.price_min,
        price_max=query.price_max,
        attributes=attributes,
        sort=query.sort,
        limit=query.limit,
    )
    if query.cursor is None:
        return request
    reader = _service(call).reader()
    after = decode_search_cursor(query.cursor, query.sort, reader.arity(request))
    return SearchRequest(**{**_fields(request), "after": after})


def _fields(request: SearchRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in SearchRequest.__dataclass_fields__}


class _NothingVisible(Exception):
    """A restricted reader asked for a status outside the public catalogue."""


async def search(call: Call) -> Reply:
    cached, generation = _cached(call)
    if cached is not None:
        return cached
    try:
        request = _request(call)
    except _NothingVisible:
        facets: dict[str, Any] = {
            "status": {},
            "kind": {},
            "tags": {},
            "attributes": {},
            "price": [],
        }
        empty = {"items": [], "total": 0, "facets": facets, "next_cursor": None}
        return Reply(json_bytes(empty), 200)
    headers = await _consistent(call, call.query.min_token)
    service = _service(call)
    result = await service.reader().search(service.store, request)
    items = [{"type": request.type, **item} for item in result.items]
    body = {
        "items": items,
        "total": result.total,
        "facets": result.facets,
        "next_cursor": result.next_cursor,
    }
    return _keep(call, json_bytes(body), generation, headers)


# ---------------------------------------------------------------- rebuilds


async def start_rebuild(call: Call) -> Reply:
    body: models.RebuildRequest = call.body
    options = RebuildOptions(
        tenant_id=body.tenant,
        types=KINDS if body.type is None else (body.type,),
        workers=body.workers,
        batch_size=body.batch_size,
    )
    monitor: Any = call.services.system.ref(MONITOR_PATH)
    progress = await monitor.ask(StartRebuild(options), timeout=30.0)
    return Reply(progress.as_dict(), 202, {"Location": f"/api/search/rebuilds/{progress.id}"})


async def list_rebuilds(call: Call) -> dict[str, Any]:
    rebuilds = await latest_rebuilds(_service(call).store, limit=20)
    return {"items": [r.as_dict() for r in rebuilds]}


async def get_rebuild(call: Call) -> dict[str, Any]:
    raw = str(call.params["rebuild_id"])
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no rebuild {raw[:40]!r}")
    row = await _service(call).store.fetchrow(
        "SELECT * FROM search_rebuilds WHERE id = $1", int(raw)
    )
    if row is None:
        raise NotFound(f"no rebuild {raw}")
    return progress_of(row).as_dict()


# ---------------------------------------------------------------- the table

_ADMIN = Permission("index", "admin", "platform")
_OPERATE = Permission("index", "read", "platform")
_REBUILD_ID = {"rebuild_id": {"type": "string", "pattern": "^[0-9]{1,18}$"}}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/products",
        list_products,
        "List products from the read model (status, sku; keyset cursor; min_token)",
        "products",
        Permission("products", "read"),
        operation_id="listProducts",
        query=models.ProductQuery,
        response=models.ProductPage,
        serve_stale=True,  # its last good answer while the store is down
    ),
    Route(
        "GET",
        "/api/content/nodes",
        list_nodes,
        "List content nodes from the read model (filters; keyset cursor; min_token)",
        "content",
        Permission("content", "read"),
        operation_id="listContentNodes",
        query=models.ContentNodeQuery,
        response=models.ContentNodePage,
        serve_stale=True,  # its last good answer while the store is down
    ),
    Route(
        "GET",
        "/api/search",
        search,
        "Full-text search of products or content, with facets and a total",
        "search",
        Permission("search", "read"),
        operation_id="search",
        query=models.SearchQuery,
        response=models.SearchPage,
        serve_stale=True,  # its last good answer while the store is down
    ),
    Route(
        "POST",
        "/api/search/rebuilds",
        start_rebuild,
        "Rebuild the read models from the write tables (operators; resumable)",
        "search",
        _ADMIN,
        operation_id="startSearchRebuild",
        status=202,
        body=models.RebuildRequest,
        response=models.RebuildStatus,
        errors=(409,),
    ),
    Route(
        "GET",
        "/api/search/rebuilds",
        list_rebuilds,
        "The running rebuilds and the most recent others (operators)",
        "search",
        _OPERATE,
        operation_id="listSearchRebuilds",
        response=models.RebuildList,
    ),
    Route(
        "GET",
        "/api/search/rebuilds/<rebuild_id>",
        get_rebuild,
        "One rebuild's progress: rows done, rows/s, ETA (operators)",
        "search",
        _OPERATE,
        operation_id="getSearchRebuild",
        path_schemas=_REBUILD_ID,
        response=models.RebuildStatus,
        errors=(404,),
    ),
)
