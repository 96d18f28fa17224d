"""The search module's tables: the read models, their full-text indexes, and rebuild checkpoints.

Every table is keyed by ``tenant_id`` first, and every statement on them
names the tenant. The read models are denormalised for reads without joins:

* ``product_index``: one row per product. Two versions guard it, because
  two kinds of events change it: ``fields_version`` (the last full snapshot
  applied: ``product.*`` or a rebuild) and ``stock_version`` (the last stock
  levels applied: any event or a rebuild). Inventory events carry the stock
  and its version, not the fields, so a late ``product.updated`` must still
  apply its fields after a newer stock movement. ``fields_version = 0`` is a
  row that has stock but no snapshot yet (an inventory event came first): it
  is never listed nor found. ``product_index_attrs`` holds one row per
  attribute, for filters and facets.
* ``content_docs``: one row per node with the node's JSON as the lists
  answer it, guarded by ``version``; a deleted node stays as a tombstone
  (``deleted = 1`` and its last version), so a late event cannot bring it
  back. ``content_index``: one row per node and locale (what search finds),
  rewritten with its node's row; ``content_index_tags`` per node.
* Full text: SQLite FTS5 tables ``product_fts``/``content_fts`` (rowid = the
  row's ``doc``) with ``unicode61 remove_diacritics 2``, whose ``tenant``
  column holds one token naming the tenant (``tenant_token``): a search
  matches it first, so it only ever ranks and counts its own tenant's rows; PostgreSQL a
  ``tsvector`` column with a GIN index and the text search configuration it
  was built with (``ts_config``). Both get the same pre-tokenized words
  (``_text.words``), title words first and then the body's.
* ``search_rebuilds``/``search_rebuild_parts``: a rebuild and its
  partitions' checkpoints (the last key done), written in the transaction of
  each batch.
"""

from __future__ import annotations

from ...store import Migration, Schema

__all__ = ("SCHEMA",)


def _common(text: str, integer: str, big: str, stamp: str, serial: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE product_index_attrs (
            tenant_id {text} NOT NULL,
            product_id {text} NOT NULL,
            name {text} NOT NULL,
            value {text} NOT NULL,
            PRIMARY KEY (tenant_id, product_id, name))""",
        "CREATE INDEX product_index_attrs_value ON product_index_attrs (tenant_id, name, value)",
        f"""CREATE TABLE content_docs (
            tenant_id {text} NOT NULL,
            node_id {text} NOT NULL,
            version {integer} NOT NULL,
            deleted {integer} NOT NULL,
            kind {text} NOT NULL,
            status {text} NOT NULL,
            document {text} NOT NULL,
            PRIMARY KEY (tenant_id, node_id))""",
        "CREATE INDEX content_docs_status ON content_docs (tenant_id, status, node_id)",
        "CREATE INDEX content_docs_kind ON content_docs (tenant_id, kind, node_id)",
        f"""CREATE TABLE content_index_tags (
            tenant_id {text} NOT NULL,
            node_id {text} NOT NULL,
            tag {text} NOT NULL,
            PRIMARY KEY (tenant_id, node_id, tag))""",
        "CREATE INDEX content_index_tags_tag ON content_index_tags (tenant_id, tag, node_id)",
        f"""CREATE TABLE search_rebuilds (
            id {serial},
            tenant_id {text},
            types {text} NOT NULL,
            status {text} NOT NULL,
            owner {text} NOT NULL,
            heartbeat_at {stamp} NOT NULL,
            rows_total {big} NOT NULL,
            rows_done {big} NOT NULL,
            session_rows {big} NOT NULL,
            session_started_at {stamp} NOT NULL,
            batch_size {integer} NOT NULL,
            workers {integer} NOT NULL,
            started_at {stamp} NOT NULL,
            finished_at {stamp},
            error {text})""",
        "CREATE INDEX search_rebuilds_status ON search_rebuilds (status, id)",
        f"""CREATE TABLE search_rebuild_parts (
            rebuild_id {big} NOT NULL,
            kind {text} NOT NULL,
            part {integer} NOT NULL,
            lo {text} NOT NULL,
            hi {text},
            after_tenant {text} NOT NULL,
            after_id {text} NOT NULL,
            done {integer} NOT NULL,
            rows_done {big} NOT NULL,
            PRIMARY KEY (rebuild_id, kind, part))""",
    )


def _product(text: str, integer: str, big: str, stamp: str) -> str:
    return f"""
            sku {text} NOT NULL,
            title {text} NOT NULL,
            description {text} NOT NULL,
            price {big} NOT NULL,
            currency {text} NOT NULL,
            status {text} NOT NULL,
            attributes {text} NOT NULL,
            on_hand {big} NOT NULL,
            reserved {big} NOT NULL,
            available {big} NOT NULL,
            created_at {stamp} NOT NULL,
            updated_at {stamp} NOT NULL,
            fields_version {integer} NOT NULL,
            stock_version {integer} NOT NULL,
            version {integer} NOT NULL"""


def _content(text: str, integer: str, big: str, stamp: str) -> str:
    return f"""
            kind {text} NOT NULL,
            status {text} NOT NULL,
            title {text} NOT NULL,
            slug {text} NOT NULL,
            excerpt {text} NOT NULL,
            body_text {text} NOT NULL,
            tags {text} NOT NULL,
            published_at {stamp},
            published_key {big} NOT NULL,
            version {integer} NOT NULL"""


_INDEXES = (
    "CREATE INDEX product_index_status ON product_index (tenant_id, status, id)",
    "CREATE INDEX product_index_sku ON product_index (tenant_id, sku)",
    "CREATE INDEX product_index_price ON product_index (tenant_id, price, id)",
    "CREATE INDEX content_index_status ON content_index (tenant_id, status, node_id)",
    """CREATE INDEX content_index_published
        ON content_index (tenant_id, published_key, node_id, locale)""",
    "CREATE INDEX content_index_locale ON content_index (tenant_id, locale, node_id)",
)

_FTS5 = "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'"

_SQLITE = (
    f"""CREATE TABLE product_index (
        doc INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL,{_product("TEXT", "INTEGER", "INTEGER", "TIMESTAMPTZ")},
        UNIQUE (tenant_id, id))""",
    f"""CREATE TABLE content_index (
        doc INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        locale TEXT NOT NULL,{_content("TEXT", "INTEGER", "INTEGER", "TIMESTAMPTZ")},
        UNIQUE (tenant_id, node_id, locale))""",
    *_INDEXES,
    f"CREATE VIRTUAL TABLE product_fts USING fts5(tenant, title, body, {_FTS5})",
    f"CREATE VIRTUAL TABLE content_fts USING fts5(tenant, title, body, {_FTS5})",
    *_common("TEXT", "INTEGER", "INTEGER", "TIMESTAMPTZ", "INTEGER PRIMARY KEY AUTOINCREMENT"),
)

_POSTGRESQL = (
    f"""CREATE TABLE product_index (
        tenant_id text NOT NULL,
        id text NOT NULL,{_product("text", "integer", "bigint", "timestamptz")},
        ts_config text NOT NULL,
        tsv tsvector NOT NULL,
        PRIMARY KEY (tenant_id, id))""",
    f"""CREATE TABLE content_index (
        tenant_id text NOT NULL,
        node_id text NOT NULL,
        locale text NOT NULL,{_content("text", "integer", "bigint", "timestamptz")},
        ts_config text NOT NULL,
        tsv tsvector NOT NULL,
        PRIMARY KEY (tenant_id, node_id, locale))""",
    *_INDEXES,
    "CREATE INDEX product_index_tsv ON product_index USING gin (tsv)",
    "CREATE INDEX content_index_tsv ON content_index USING gin (tsv)",
    *_common("text", "integer", "bigint", "timestamptz", "bigserial PRIMARY KEY"),
)

_READ_MODELS = Migration(
    version=1,
    name="product_index, content_docs, content_index, full text, rebuild checkpoints",
    sqlite=_SQLITE,
    postgresql=_POSTGRESQL,
)

SCHEMA = Schema("search", (_READ_MODELS,))
