"""Reading the read models: keyset lists and full-text search with facets.

Invariants:

* Every statement names the tenant (``tenant_id = $1``) and binds every
  value; the full-text condition is the compiled query (``_query``), bound
  too. Rows with ``fields_version = 0`` (stock without a snapshot yet) and
  node tombstones are never answered.
* A constant number of statements per request whatever the page size: a
  list is one; a search is three (the page, the counts by status and kind or
  price bucket, which also give the total, and the tag or attribute counts).
  ``queries`` counts them (the no-N+1 tests read it).
* Order is total (the id, and the locale for content, break ties), so
  keyset cursors never skip or repeat a row of an unchanged index.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..._exceptions import InvalidInput
from ...store import Row, Store, row_timestamp
from ._projection import TextConfigs, _Params, tenant_token
from ._query import Query, to_fts5, to_tsquery
from ._text import highlight, snippet

__all__ = (
    "PRICE_BUCKETS",
    "ProductListing",
    "SearchReader",
    "SearchRequest",
    "SearchResult",
    "decode_search_cursor",
)

#: Upper bounds (exclusive, minor units) of the price facet's buckets; the last is open.
PRICE_BUCKETS = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000)
_TOP_TAGS = 50
_TOP_VALUES = 20
_TOP_ATTRIBUTES = 50
_SNIPPET_SOURCE = 20_000

SearchType = Literal["product", "content"]
Sort = Literal["relevance", "price", "-price", "published_at", "-published_at"]

_PRODUCT_SELECT = (
    "p.id, p.sku, p.title, p.description, p.price, p.currency, p.status, p.attributes,"
    " p.on_hand, p.reserved, p.available, p.created_at, p.updated_at, p.version"
)


def product_item(row: Row) -> dict[str, Any]:
    """A ``product_index`` row as the products API answers a product."""
    return {
        "id": row["id"],
        "sku": row["sku"],
        "title": row["title"],
        "description": row["description"],
        "price": int(row["price"]),
        "currency": row["currency"],
        "status": row["status"],
        "attributes": json.loads(row["attributes"]),
        "on_hand": int(row["on_hand"]),
        "reserved": int(row["reserved"]),
        "available": int(row["available"]),
        "created_at": row_timestamp(row["created_at"]).isoformat(),
        "updated_at": row_timestamp(row["updated_at"]).isoformat(),
        "version": int(row["version"]),
    }


@dataclass(frozen=True, slots=True)
class ProductListing:
    """A page of products (as the API answers them) and the id to continue after."""

    items: list[dict[str, Any]]
    after: str | None


@dataclass(frozen=True, slots=True)
class NodeListing:
    """A page of nodes as stored JSON documents and the id to continue after."""

    documents: list[str]
    after: str | None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated search (see ``GET /api/search``)."""

    tenant_id: str
    type: SearchType = "product"
    query: Query | None = None
    locale: str | None = None
    status: str | None = None
    kind: str | None = None
    tag: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sort: Sort = "relevance"
    limit: int = 20
    after: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    items: list[dict[str, Any]]
    total: int
    facets: dict[str, Any]
    next_cursor: str | None


def _no_hit(word: str) -> bool:
    return False


# ---------------------------------------------------------------- cursors


def _encode_cursor(sort: str, values: Sequence[Any]) -> str:
    raw = json.dumps([sort, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_search_cursor(cursor: str, sort: str, arity: int) -> tuple[Any, ...]:
    """The keyset position a search cursor holds; :class:`InvalidInput` unless it is ours."""
    bad = InvalidInput("cursor is not one this search handed out", field="cursor")
    if len(cursor) > 400:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except ValueError:
        raise bad from None
    if not isinstance(data, list) or len(data) != arity + 1 or data[0] != sort:
        raise bad
    values = tuple(data[1:])
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad
        if isinstance(value, float) and not math.isfinite(value):
            raise bad
        if isinstance(value, str) and len(value) > 100:
            raise bad
    return values


# ---------------------------------------------------------------- the reader


class SearchReader:
    """Lists and searches of one backend; one instance per application."""

    def __init__(self, backend: str, configs: TextConfigs | None = None) -> None:
        self.backend = backend
        self.configs = configs or TextConfigs()
        self.queries = 0
        # A join done in the written order: SQLite's CROSS JOIN (PostgreSQL plans well).
        self._then = "CROSS JOIN" if backend == "sqlite" else "JOIN"

    async def _fetch(self, store: Store, sql: str, params: _Params) -> list[Row]:
        self.queries += 1
        return await store.fetch(sql, *params.values)

    # ------------------------------------------------------------------ lists

    async def list_products(
        self,
        store: Store,
        tenant_id: str,
        *,
        status: str | None = None,
        sku: str | None = None,
        after: str = "",
        limit: int = 50,
    ) -> ProductListing:
        """Products ordered by id after ``after``; one statement."""
        p = _Params()
        where = [f"p.tenant_id = {p(tenant_id)}", f"p.id > {p(after)}", "p.fields_version > 0"]
        if status is not None:
            where.append(f"p.status = {p(status)}")
        if sku is not None:
            where.append(f"p.sku = {p(sku)}")
        rows = await self._fetch(
            store,
            f"SELECT {_PRODUCT_SELECT} FROM product_index p WHERE {' AND '.join(where)}"
            f" ORDER BY p.id LIMIT {p(limit + 1)}",
            p,
        )
        items = [product_item(r) for r in rows[:limit]]
        return ProductListing(items, items[-1]["id"] if len(rows) > limit else None)

    async def list_nodes(
        self,
        store: Store,
        tenant_id: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        locale: str | None = None,
        tag: str | None = None,
        after: str = "",
        limit: int = 50,
    ) -> NodeListing:
        """Nodes ordered by id after ``after``, as their stored JSON; one statement."""
        p = _Params()
        where = [
            f"d.tenant_id = {p(tenant_id)}",
            f"d.node_id > {p(after)}",
            "d.deleted = 0",
        ]
        if status is not None:
            where.append(f"d.status = {p(status)}")
        if kind is not None:
            where.append(f"d.kind = {p(kind)}")
        if locale is not None:
            where.append(
                "EXISTS (SELECT 1 FROM content_index c WHERE c.tenant_id = d.tenant_id"
                f" AND c.node_id = d.node_id AND c.locale = {p(locale)})"
            )
        if tag is not None:
            where.append(
                "EXISTS (SELECT 1 FROM content_index_tags g WHERE g.tenant_id = d.tenant_id"
                f" AND g.node_id = d.node_id AND g.tag = {p(tag)})"
            )
        rows = await self._fetch(
            store,
            f"SELECT d.node_id, d.document FROM content_docs d WHERE {' AND '.join(where)}"
            f" ORDER BY d.node_id LIMIT {p(limit + 1)}",
            p,
        )
        documents = [str(r["document"]) for r in rows[:limit]]
        after_id = str(rows[limit - 1]["node_id"]) if len(rows) > limit else None
        return NodeListing(documents, after_id)

    # ------------------------------------------------------------------ search

    def _match(
        self, p: _Params, alias: str, query: Query, locale: str | None, tenant_id: str
    ) -> tuple[str, str]:
        """(the FROM/WHERE fragment of the full-text condition, the score expression)."""
        if self.backend == "sqlite":
            table = "product_fts" if alias == "p" else "content_fts"
            # The tenant's token first: only its rows are ranked and counted; the
            # user's words are looked for in the text columns only.
            expression = (
                f'{{tenant}} : "{tenant_token(tenant_id)}" AND {{title body}} : ({to_fts5(query)})'
            )
            condition = f"{table} MATCH {p(expression)}"
            # bm25: lower is better; the title column weighs double.
            return condition, f"bm25({table}, 0.0, 2.0, 1.0)"
        text = p(to_tsquery(query))
        if alias == "p":
            configs: tuple[str, ...] = (self.configs.products,)
        elif locale is not None:
            configs = (self.configs.for_locale(locale),)
        else:
            configs = self.configs.all
        if len(configs) == 1:
            q = f"to_tsquery({p(configs[0])}::text::regconfig, {text})"
            return f"{alias}.tsv @@ {q}", f"ts_rank({alias}.tsv, {q})::float8"
        conditions, scores = [], []
        for config in configs:
            name = p(config)
            q = f"to_tsquery({name}::text::regconfig, {text})"
            conditions.append(f"({alias}.ts_config = {name} AND {alias}.tsv @@ {q})")
            scores.append(f"WHEN {name} THEN ts_rank({alias}.tsv, {q})")
        return (
            "(" + " OR ".join(conditions) + ")",
            f"(CASE {alias}.ts_config {' '.join(scores)} ELSE 0 END)::float8",
        )

    def _base(self, p: _Params, req: SearchRequest) -> tuple[str, str | None]:
        """(FROM ... WHERE ... of the matching rows, the score expression or None)."""
        product = req.type == "product"
        alias = "p" if product else "c"
        table = "product_index p" if product else "content_index c"
        where = [f"{alias}.tenant_id = {p(req.tenant_id)}"]
        source = f"FROM {table}"
        score = None
        if req.query is not None:
            condition, score = self._match(p, alias, req.query, req.locale, req.tenant_id)
            if self.backend == "sqlite":
                fts = "product_fts" if product else "content_fts"
                # CROSS JOIN keeps this order: the full-text match drives, each hit
                # then finds its row by rowid (else SQLite may scan the tenant's rows
                # and run the MATCH once per row).
                source = f"FROM {fts} CROSS JOIN {table} ON {alias}.doc = {fts}.rowid"
            where.append(condition)
        if product:
            where.append("p.fields_version > 0")
            if req.price_min is not None:
                where.append(f"p.price >= {p(req.price_min)}")
            if req.price_max is not None:
                where.append(f"p.price <= {p(req.price_max)}")
            for name, values in sorted(req.attributes.items()):
                options = ", ".join(p(v) for v in values)
                where.append(
                    "EXISTS (SELECT 1 FROM product_index_attrs a WHERE a.tenant_id = p.tenant_id"
                    f" AND a.product_id = p.id AND a.name = {p(name)} AND a.value IN ({options}))"
                )
        else:
            if req.locale is not None:
                where.append(f"c.locale = {p(req.locale)}")
            if req.kind is not None:
                where.append(f"c.kind = {p(req.kind)}")
            if req.tag is not None:
                where.append(
                    "EXISTS (SELECT 1 FROM content_index_tags g WHERE g.tenant_id = c.tenant_id"
                    f" AND g.node_id = c.node_id AND g.tag = {p(req.tag)})"
                )
        if req.status is not None:
            where.append(f"{alias}.status = {p(req.status)}")
        return f"{source} WHERE {' AND '.join(where)}", score

    def _order(self, req: SearchRequest, has_score: bool) -> tuple[list[str], str]:
        """(the sort key columns of the page's subquery, ``asc`` or ``desc``)."""
        ids = ["id"] if req.type == "product" else ["node_id", "locale"]
        if req.sort == "relevance":
            if not has_score:
                return ids, "asc"
            # SQLite's bm25 grows better downwards, PostgreSQL's ts_rank upwards;
            # the page's subquery negates ts_rank so both sort ascending.
            return ["score", *ids], "asc"
        column = "price" if req.sort.endswith("price") else "published_key"
        return [column, *ids], "desc" if req.sort.startswith("-") else "asc"

    def arity(self, req: SearchRequest) -> int:
        """How many values the request's cursors hold."""
        keys, _ = self._order(req, req.query is not None)
        return len(keys)

    async def search(self, store: Store, req: SearchRequest) -> SearchResult:
        """The page, the total and the facets of ``req``: three statements."""
        product = req.type == "product"
        alias = "p" if product else "c"
        p = _Params()
        base, score = self._base(p, req)
        keys, direction = self._order(req, score is not None)
        # The match is sorted on its keys only; the page's rows are read after.
        ids = ["id"] if product else ["node_id", "locale"]
        key_columns = [f"{alias}.{k} AS {k}" for k in dict.fromkeys([*keys, *ids]) if k != "score"]
        if score is not None:
            sign = "" if self.backend == "sqlite" else "-"
            key_columns.append(f"{sign}{score} AS score")
        condition = ""
        if req.after is not None:
            op = ">" if direction == "asc" else "<"
            row = ", ".join(p(v) for v in req.after)
            condition = f" WHERE ({', '.join(keys)}) {op} ({row})"
        order = ", ".join(f"{k} {direction.upper()}" for k in keys)
        outer_order = ", ".join(f"m.{k} {direction.upper()}" for k in keys)
        if product:
            columns, table = _PRODUCT_SELECT, "product_index p"
        else:
            columns = (
                "c.node_id, c.locale, c.kind, c.status, c.title, c.slug, c.excerpt, c.body_text,"
                " c.tags, c.published_at, c.published_key, c.version"
            )
            table = "content_index c"
        join = " AND ".join(f"{alias}.{k} = m.{k}" for k in ids)
        if score is not None:
            columns += ", m.score AS score"
        rows = await self._fetch(
            store,
            f"SELECT {columns} FROM (SELECT * FROM (SELECT {', '.join(key_columns)} {base}) k"
            f"{condition} ORDER BY {order} LIMIT {p(req.limit + 1)}) m"
            f" JOIN {table} ON {alias}.tenant_id = {p(req.tenant_id)} AND {join}"
            f" ORDER BY {outer_order}",
            p,
        )
        page = rows[: req.limit]
        next_cursor = None
        if len(rows) > req.limit and page:
            last = page[-1]
            values = [float(last[k]) if k == "score" else last[k] for k in keys]
            values = [
                int(v) if k in ("price", "published_key") else v
                for k, v in zip(keys, values, strict=True)
            ]
            next_cursor = _encode_cursor(req.sort, values)
        hit = req.query.highlighter() if req.query is not None else _no_hit
        items = [self._item(req, r, hit) for r in page]
        facets, total = await self._facets(store, req, alias)
        return SearchResult(items, total, facets, next_cursor)

    def _item(self, req: SearchRequest, row: Row, hit: Callable[[str], bool]) -> dict[str, Any]:
        score = float(row["score"]) if "score" in row and row["score"] is not None else None
        if score is not None and self.backend == "postgresql":
            score = -score  # back to ts_rank (the subquery negated it for sorting)
        if req.type == "product":
            item = product_item(row)
            text = item["description"] or item["title"]
            item["score"] = score
            item["highlights"] = {
                "title": highlight(item["title"], hit),
                "snippet": snippet(text[:_SNIPPET_SOURCE], hit),
            }
            return item
        published = row["published_at"]
        body = str(row["body_text"]) or str(row["excerpt"])
        return {
            "id": str(row["node_id"]),
            "locale": str(row["locale"]),
            "kind": str(row["kind"]),
            "status": str(row["status"]),
            "title": str(row["title"]),
            "slug": str(row["slug"]),
            "excerpt": str(row["excerpt"]),
            "tags": json.loads(row["tags"]),
            "published_at": None if published is None else row_timestamp(published).isoformat(),
            "version": int(row["version"]),
            "score": score,
            "highlights": {
                "title": highlight(str(row["title"]), hit),
                "snippet": snippet(body[:_SNIPPET_SOURCE], hit),
            },
        }

    async def _facets(
        self, store: Store, req: SearchRequest, alias: str
    ) -> tuple[dict[str, Any], int]:
        facets: dict[str, Any] = {
            "status": {},
            "kind": {},
            "tags": {},
            "attributes": {},
            "price": [],
        }
        p = _Params()
        base, _ = self._base(p, req)
        if req.type == "product":
            bucket = (
                "CASE"
                + "".join(
                    f" WHEN p.price < {bound} THEN {i}" for i, bound in enumerate(PRICE_BUCKETS)
                )
                + f" ELSE {len(PRICE_BUCKETS)} END"
            )
            rows = await self._fetch(
                store,
                f"SELECT p.status AS status, {bucket} AS bucket, count(*) AS n {base}"
                " GROUP BY p.status, bucket",
                p,
            )
            buckets = [0] * (len(PRICE_BUCKETS) + 1)
            status = facets["status"]
            for r in rows:
                status[str(r["status"])] = status.get(str(r["status"]), 0) + int(r["n"])
                buckets[int(r["bucket"])] += int(r["n"])
            bounds = (0, *PRICE_BUCKETS, None)
            facets["price"] = [
                {"min": bounds[i], "max": bounds[i + 1], "count": n}
                for i, n in enumerate(buckets)
                if n
            ]
            p2 = _Params()
            base2, _ = self._base(p2, req)
            attrs = await self._fetch(
                store,
                "SELECT a.name AS name, a.value AS value, count(*) AS n"
                f" FROM (SELECT p.tenant_id AS t, p.id AS i {base2}) m"
                f" {self._then} product_index_attrs a ON a.tenant_id = m.t AND a.product_id = m.i"
                " GROUP BY a.name, a.value ORDER BY a.name, n DESC, a.value"
                f" LIMIT {p2(_TOP_ATTRIBUTES * _TOP_VALUES)}",
                p2,
            )
            for r in attrs:
                values = facets["attributes"].setdefault(str(r["name"]), {})
                if len(values) < _TOP_VALUES and len(facets["attributes"]) <= _TOP_ATTRIBUTES:
                    values[str(r["value"])] = int(r["n"])
        else:
            rows = await self._fetch(
                store,
                f"SELECT c.kind AS kind, c.status AS status, count(*) AS n {base}"
                " GROUP BY c.kind, c.status",
                p,
            )
            for r in rows:
                for name in ("kind", "status"):
                    value = str(r[name])
                    facets[name][value] = facets[name].get(value, 0) + int(r["n"])
            p2 = _Params()
            base2, _ = self._base(p2, req)
            tags = await self._fetch(
                store,
                "SELECT g.tag AS tag, count(*) AS n"
                f" FROM (SELECT c.tenant_id AS t, c.node_id AS i {base2}) m"
                f" {self._then} content_index_tags g ON g.tenant_id = m.t AND g.node_id = m.i"
                f" GROUP BY g.tag ORDER BY n DESC, g.tag LIMIT {p2(_TOP_TAGS)}",
                p2,
            )
            facets["tags"] = {str(r["tag"]): int(r["n"]) for r in tags}
        total = sum(facets["status"].values())
        return facets, total
