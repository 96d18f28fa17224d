"""Applying documents to the read models: batched statements, each row guarded by its version.

Invariants:

* A write never makes a row older: every statement compares the row's
  version with the document's (``<`` for events, ``<=`` for a rebuild, which
  may rewrite a row at the same version, e.g. after the text rules changed).
  A redelivered, late or concurrent event therefore changes nothing, on one
  node or many (PostgreSQL evaluates the guard on the locked row, SQLite has
  a single writer).
* A product's fields and its stock have their own versions
  (``fields_version``, ``stock_version``); a full document writes each part
  it is newer for, an inventory event only the stock. The row's ``version``
  is the newest of both, ``updated_at`` the latest time seen.
* A content node's ``content_docs`` row decides: only when it is written
  are the node's ``content_index`` rows, tags and full-text rows rewritten,
  in the same transaction.
* Everything runs in the caller's unit of work (the inbox entry of the event,
  or the checkpoint of a rebuild batch, commits with it), with a constant
  number of statements per batch whatever its size, plus one per stock line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...store import Backend, UnitOfWork
from ._documents import Change, NodeDoc, NodeGone, ProductDoc, StockLevels

__all__ = ("MAX_BATCH", "Projector", "TextConfigs", "tenant_token")

#: The most documents one statement carries (bound parameters stay under both stores' limits).
MAX_BATCH = 1000

_PRODUCT_FIELDS = (
    "sku",
    "title",
    "description",
    "price",
    "currency",
    "status",
    "attributes",
    "created_at",
)
_STOCK_FIELDS = ("on_hand", "reserved", "available")
_PRODUCT_COLUMNS = (
    "tenant_id",
    "id",
    *_PRODUCT_FIELDS,
    *_STOCK_FIELDS,
    "updated_at",
    "fields_version",
    "stock_version",
    "version",
)
_CONTENT_COLUMNS = (
    "tenant_id",
    "node_id",
    "locale",
    "kind",
    "status",
    "title",
    "slug",
    "excerpt",
    "body_text",
    "tags",
    "published_at",
    "published_key",
    "version",
)


def tenant_token(tenant_id: str) -> str:
    """The word naming a tenant in the FTS5 tables' ``tenant`` column (letters and digits)."""
    return "t" + tenant_id.encode().hex()


class _Params:
    """Numbered placeholders: ``p(value)`` binds ``value`` and answers ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def row(self, values: Iterable[Any]) -> str:
        return "(" + ", ".join(self(v) for v in values) + ")"


@dataclass(frozen=True, slots=True)
class TextConfigs:
    """PostgreSQL text search configurations: per content locale, and for products.

    A locale's configuration is the one named for it, else for its language
    (``pt`` for ``pt-BR``), else ``default``. Only ``simple`` (the default)
    gives exactly the word semantics SQLite has; a language configuration
    adds stemming and stop words on PostgreSQL.
    """

    default: str = "simple"
    products: str = "simple"
    locales: Mapping[str, str] = field(default_factory=dict)

    def for_locale(self, locale: str) -> str:
        return self.locales.get(locale) or self.locales.get(locale.split("-")[0]) or self.default

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.default, *self.locales.values())))


def _latest(changes: Iterable[Any], key: Any) -> list[Any]:
    best: dict[Any, Any] = {}
    for change in changes:
        k = key(change)
        if k not in best or change.version > best[k].version:
            best[k] = change
    return list(best.values())


def _chunks(items: Sequence[Any], size: int = MAX_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Projector:
    """Writes documents into the read models of one backend (see the module docstring)."""

    def __init__(self, backend: Backend, configs: TextConfigs | None = None) -> None:
        self.backend = backend
        self.configs = configs or TextConfigs()
        self._max = "max" if backend == "sqlite" else "GREATEST"

    async def apply(
        self, tx: UnitOfWork, changes: Sequence[Change], *, rebuild: bool = False
    ) -> int:
        """Apply ``changes`` in ``tx``; the number of rows (products, nodes) written."""
        older = "<=" if rebuild else "<"
        products = [c for c in changes if isinstance(c, ProductDoc)]
        stock = [c for c in changes if isinstance(c, StockLevels)]
        nodes = [c for c in changes if isinstance(c, NodeDoc | NodeGone)]
        written = 0
        for chunk in _chunks(_latest(products, lambda d: (d.tenant_id, d.id))):
            written += await self._products(tx, chunk, older)
        for line in _latest(stock, lambda s: (s.tenant_id, s.product_id)):
            written += await self._stock(tx, line, older)
        for chunk in _chunks(_latest(nodes, lambda d: (d.tenant_id, d.id))):
            written += await self._nodes(tx, chunk, older)
        return written

    # ------------------------------------------------------------------ products

    def _tsv(self, p: _Params, config: str, title: str, body: str) -> str:
        cfg = f"{config}::text::regconfig"
        return (
            f"setweight(to_tsvector({cfg}, {p(title)}), 'A')"
            f" || setweight(to_tsvector({cfg}, {p(body)}), 'D')"
        )

    async def _products(self, tx: UnitOfWork, docs: Sequence[ProductDoc], older: str) -> int:
        p = _Params()
        pg = self.backend == "postgresql"
        config = p(self.configs.products) if pg else ""
        rows = []
        for d in docs:
            values = [
                d.tenant_id,
                d.id,
                d.sku,
                d.title,
                d.description,
                d.price,
                d.currency,
                d.status,
                json.dumps(dict(d.attributes), sort_keys=True, separators=(",", ":")),
                d.created_at,
                d.on_hand,
                d.reserved,
                d.available,
                d.updated_at,
                d.version,
                d.version,
                d.version,
            ]
            row = ", ".join(p(v) for v in values)
            if pg:
                row += f", {config}, {self._tsv(p, config, *d.search_text())}"
            rows.append(f"({row})")
        columns = list(_PRODUCT_COLUMNS)
        if pg:
            columns += ["ts_config", "tsv"]
        fields = f"product_index.fields_version {older} excluded.fields_version"
        stock = f"product_index.stock_version {older} excluded.stock_version"
        sets = [
            f"{c} = CASE WHEN {fields} THEN excluded.{c} ELSE product_index.{c} END"
            for c in (*_PRODUCT_FIELDS, *(("ts_config", "tsv") if pg else ()))
        ]
        sets += [
            f"{c} = CASE WHEN {stock} THEN excluded.{c} ELSE product_index.{c} END"
            for c in _STOCK_FIELDS
        ]
        sets += [
            f"fields_version = {self._max}(product_index.fields_version, excluded.fields_version)",
            f"stock_version = {self._max}(product_index.stock_version, excluded.stock_version)",
            f"version = {self._max}(product_index.version, excluded.version)",
            f"updated_at = {self._max}(product_index.updated_at, excluded.updated_at)",
        ]
        returning = "tenant_id, id, fields_version" + ("" if pg else ", doc")
        written = await tx.fetch(
            f"INSERT INTO product_index ({', '.join(columns)}) VALUES {', '.join(rows)}"
            f" ON CONFLICT (tenant_id, id) DO UPDATE SET {', '.join(sets)}"
            f" WHERE {fields} OR {stock} RETURNING {returning}",
            *p.values,
        )
        by_key = {(d.tenant_id, d.id): d for d in docs}
        # A returned row whose fields_version is the document's got its fields
        # (or already had them, with the same text): rewrite its text and attributes.
        changed = [
            (r, by_key[str(r["tenant_id"]), str(r["id"])])
            for r in written
            if int(r["fields_version"]) == by_key[str(r["tenant_id"]), str(r["id"])].version
        ]
        if changed:
            await self._product_side_rows(tx, changed)
        return len(written)

    async def _product_side_rows(
        self, tx: UnitOfWork, changed: list[tuple[Any, ProductDoc]]
    ) -> None:
        """Replace the attributes and text of ``changed``: deferred, they ride on the commit."""
        keys = _Params()
        in_keys = ", ".join(keys.row((d.tenant_id, d.id)) for _, d in changed)
        tx.defer(
            f"DELETE FROM product_index_attrs WHERE (tenant_id, product_id) IN (VALUES {in_keys})",
            *keys.values,
        )
        attrs = _Params()
        attr_rows = [
            attrs.row((d.tenant_id, d.id, name, value))
            for _, d in changed
            for name, value in d.attribute_values()
        ]
        if attr_rows:
            tx.defer(
                "INSERT INTO product_index_attrs (tenant_id, product_id, name, value)"
                f" VALUES {', '.join(attr_rows)}",
                *attrs.values,
            )
        if self.backend == "sqlite":
            docs = [int(r["doc"]) for r, _ in changed]
            self._fts_rewrite(
                tx,
                "product_fts",
                docs,
                [(int(r["doc"]), d.tenant_id, *d.search_text()) for r, d in changed],
            )

    @staticmethod
    def _fts_rewrite(
        tx: UnitOfWork,
        table: str,
        drop: Sequence[int],
        add: Sequence[tuple[int, str, str, str]],
    ) -> None:
        """Queue the FTS5 rows' replacement (SQLite), by the documents' rowids."""
        if drop:
            p = _Params()
            tx.defer(
                f"DELETE FROM {table} WHERE rowid IN ({', '.join(p(d) for d in drop)})", *p.values
            )
        if add:
            p = _Params()
            rows = ", ".join(
                p.row((doc, tenant_token(tenant), title, f"{title} {body}".strip()))
                for doc, tenant, title, body in add
            )
            tx.defer(f"INSERT INTO {table} (rowid, tenant, title, body) VALUES {rows}", *p.values)

    async def _stock(self, tx: UnitOfWork, line: StockLevels, older: str) -> int:
        p = _Params()
        pg = self.backend == "postgresql"
        values = [
            line.tenant_id,
            line.product_id,
            "",
            "",
            "",
            0,
            "",
            "",
            "{}",
            line.at,
            line.on_hand,
            line.reserved,
            line.on_hand - line.reserved,
            line.at,
            0,  # no fields yet: this row is not listed until a snapshot comes
            line.version,
            line.version,
        ]
        row = ", ".join(p(v) for v in values)
        columns = list(_PRODUCT_COLUMNS)
        if pg:
            columns += ["ts_config", "tsv"]
            row += f", {p(self.configs.products)}, ''::tsvector"
        sets = [f"{c} = excluded.{c}" for c in (*_STOCK_FIELDS, "stock_version")]
        sets += [
            f"version = {self._max}(product_index.version, excluded.version)",
            f"updated_at = {self._max}(product_index.updated_at, excluded.updated_at)",
        ]
        return await tx.execute(
            f"INSERT INTO product_index ({', '.join(columns)}) VALUES ({row})"
            f" ON CONFLICT (tenant_id, id) DO UPDATE SET {', '.join(sets)}"
            f" WHERE product_index.stock_version {older} excluded.stock_version",
            *p.values,
        )

    # ------------------------------------------------------------------ content

    async def _nodes(self, tx: UnitOfWork, docs: Sequence[NodeDoc | NodeGone], older: str) -> int:
        p = _Params()
        rows = []
        for d in docs:
            if isinstance(d, NodeGone):
                rows.append(p.row((d.tenant_id, d.id, d.version, 1, "", "", "")))
            else:
                document = json.dumps(d.document(), separators=(",", ":"), ensure_ascii=False)
                rows.append(p.row((d.tenant_id, d.id, d.version, 0, d.kind, d.status, document)))
        sets = ", ".join(
            f"{c} = excluded.{c}" for c in ("version", "deleted", "kind", "status", "document")
        )
        written = await tx.fetch(
            "INSERT INTO content_docs (tenant_id, node_id, version, deleted, kind, status,"
            f" document) VALUES {', '.join(rows)} ON CONFLICT (tenant_id, node_id) DO UPDATE"
            f" SET {sets} WHERE content_docs.version {older} excluded.version"
            " RETURNING tenant_id, node_id",
            *p.values,
        )
        if not written:
            return 0
        by_key = {(d.tenant_id, d.id): d for d in docs}
        winners = [by_key[str(r["tenant_id"]), str(r["node_id"])] for r in written]
        await self._rewrite_nodes(tx, winners)
        return len(winners)

    async def _rewrite_nodes(self, tx: UnitOfWork, winners: Sequence[NodeDoc | NodeGone]) -> None:
        """Replace the winners' locale rows, tags and text (a tombstone keeps none).

        Every statement is deferred (the rows' FTS5 ids are found by joining
        on their keys, not read back), so a node's rewrite rides on the
        unit's commit: one round trip to the writer, not eight.
        """
        sqlite = self.backend == "sqlite"
        keys = _Params()
        in_keys = ", ".join(keys.row((d.tenant_id, d.id)) for d in winners)
        where = f"(tenant_id, node_id) IN (VALUES {in_keys})"
        if sqlite:
            tx.defer(
                "DELETE FROM content_fts WHERE rowid IN"
                f" (SELECT doc FROM content_index WHERE {where})",
                *keys.values,
            )
        tx.defer(f"DELETE FROM content_index WHERE {where}", *keys.values)
        tx.defer(f"DELETE FROM content_index_tags WHERE {where}", *keys.values)
        live = [d for d in winners if isinstance(d, NodeDoc)]
        p = _Params()
        rows: list[str] = []
        fts = _Params()
        fts_rows: list[str] = []
        for d in live:
            tags = json.dumps(list(d.tags), separators=(",", ":"))
            for t in d.translations:
                body, title_words, body_words = NodeDoc.search_text(t)
                values = [
                    d.tenant_id,
                    d.id,
                    t.locale,
                    d.kind,
                    d.status,
                    t.title,
                    t.slug,
                    t.excerpt,
                    body,
                    tags,
                    d.published_at,
                    d.published_key,
                    d.version,
                ]
                row = ", ".join(p(v) for v in values)
                if not sqlite:
                    config = self.configs.for_locale(t.locale)
                    row += f", {p(config)}, {self._tsv(p, p(config), title_words, body_words)}"
                rows.append(f"({row})")
                if sqlite:
                    text = f"{title_words} {body_words}".strip()
                    key = (d.tenant_id, d.id, t.locale, tenant_token(d.tenant_id))
                    fts_rows.append(fts.row((*key, title_words, text)))
        if rows:
            columns = list(_CONTENT_COLUMNS) + ([] if sqlite else ["ts_config", "tsv"])
            tx.defer(
                f"INSERT INTO content_index ({', '.join(columns)}) VALUES {', '.join(rows)}",
                *p.values,
            )
        if fts_rows:
            tx.defer(
                f"WITH v (tenant_id, node_id, locale, tenant, title, body) AS"
                f" (VALUES {', '.join(fts_rows)})"
                " INSERT INTO content_fts (rowid, tenant, title, body)"
                " SELECT c.doc, v.tenant, v.title, v.body FROM v JOIN content_index c"
                " ON c.tenant_id = v.tenant_id AND c.node_id = v.node_id AND c.locale = v.locale",
                *fts.values,
            )
        tags_p = _Params()
        tag_rows = [tags_p.row((d.tenant_id, d.id, tag)) for d in live for tag in d.tags]
        if tag_rows:
            tx.defer(
                "INSERT INTO content_index_tags (tenant_id, node_id, tag)"
                f" VALUES {', '.join(tag_rows)}",
                *tags_p.values,
            )

    # ------------------------------------------------------------------ rebuild sweep

    async def sweep_products(self, tx: UnitOfWork, tenant_id: str | None) -> int:
        """Delete index rows of products the write table does not have; how many."""
        p = _Params()
        scope = f" AND product_index.tenant_id = {p(tenant_id)}" if tenant_id is not None else ""
        returning = "tenant_id, id" + (", doc" if self.backend == "sqlite" else "")
        gone = await tx.fetch(
            "DELETE FROM product_index WHERE NOT EXISTS (SELECT 1 FROM commerce_products c"
            " WHERE c.tenant_id = product_index.tenant_id AND c.id = product_index.id)"
            f"{scope} RETURNING {returning}",
            *p.values,
        )
        if gone:
            keys = _Params()
            in_keys = ", ".join(keys.row((str(r["tenant_id"]), str(r["id"]))) for r in gone)
            await tx.execute(
                "DELETE FROM product_index_attrs"
                f" WHERE (tenant_id, product_id) IN (VALUES {in_keys})",
                *keys.values,
            )
            if self.backend == "sqlite":
                self._fts_rewrite(tx, "product_fts", [int(r["doc"]) for r in gone], ())
        return len(gone)

    async def sweep_nodes(self, tx: UnitOfWork, tenant_id: str | None) -> int:
        """Turn index rows of nodes the write tables do not have into tombstones; how many."""
        p = _Params()
        scope = f" AND content_docs.tenant_id = {p(tenant_id)}" if tenant_id is not None else ""
        gone = await tx.fetch(
            "UPDATE content_docs SET deleted = 1, kind = '', status = '', document = ''"
            " WHERE deleted = 0 AND NOT EXISTS (SELECT 1 FROM content_nodes n"
            " WHERE n.tenant_id = content_docs.tenant_id AND n.id = content_docs.node_id)"
            f"{scope} RETURNING tenant_id, node_id, version",
            *p.values,
        )
        if gone:
            await self._rewrite_nodes(
                tx,
                [NodeGone(str(r["tenant_id"]), str(r["node_id"]), int(r["version"])) for r in gone],
            )
        return len(gone)
