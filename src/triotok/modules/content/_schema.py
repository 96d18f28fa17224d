"""The content module's tables: nodes, their translations and their tags.

Slugs are unique per tenant and locale (an index, so two nodes on two nodes
of the cluster cannot take one slug); translations and tags go with their
node (``ON DELETE CASCADE``). ``version`` is the optimistic-concurrency
column every write compares.
"""

from __future__ import annotations

from ...store import Migration, Schema

__all__ = ("SCHEMA",)

_NODES = Migration(
    version=1,
    name="content_nodes, content_translations, content_tags",
    sqlite=(
        """CREATE TABLE content_nodes (
            tenant_id TEXT NOT NULL,
            id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            parent_id TEXT,
            position INTEGER,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            published_at TIMESTAMPTZ,
            version INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, id))""",
        "CREATE INDEX content_nodes_status ON content_nodes (tenant_id, status, id)",
        """CREATE TABLE content_translations (
            tenant_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            locale TEXT NOT NULL,
            title TEXT NOT NULL,
            slug TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            body TEXT NOT NULL,
            body_format TEXT NOT NULL,
            PRIMARY KEY (tenant_id, node_id, locale),
            FOREIGN KEY (tenant_id, node_id) REFERENCES content_nodes (tenant_id, id)
                ON DELETE CASCADE)""",
        """CREATE UNIQUE INDEX content_translations_slug
            ON content_translations (tenant_id, locale, slug)""",
        """CREATE TABLE content_tags (
            tenant_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (tenant_id, node_id, tag),
            FOREIGN KEY (tenant_id, node_id) REFERENCES content_nodes (tenant_id, id)
                ON DELETE CASCADE)""",
        "CREATE INDEX content_tags_tag ON content_tags (tenant_id, tag, node_id)",
    ),
    postgresql=(
        """CREATE TABLE content_nodes (
            tenant_id text NOT NULL,
            id text NOT NULL,
            kind text NOT NULL,
            status text NOT NULL,
            parent_id text,
            position integer,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            published_at timestamptz,
            version integer NOT NULL,
            PRIMARY KEY (tenant_id, id))""",
        "CREATE INDEX content_nodes_status ON content_nodes (tenant_id, status, id)",
        """CREATE TABLE content_translations (
            tenant_id text NOT NULL,
            node_id text NOT NULL,
            locale text NOT NULL,
            title text NOT NULL,
            slug text NOT NULL,
            excerpt text NOT NULL,
            body text NOT NULL,
            body_format text NOT NULL,
            PRIMARY KEY (tenant_id, node_id, locale),
            FOREIGN KEY (tenant_id, node_id) REFERENCES content_nodes (tenant_id, id)
                ON DELETE CASCADE)""",
        """CREATE UNIQUE INDEX content_translations_slug
            ON content_translations (tenant_id, locale, slug)""",
        """CREATE TABLE content_tags (
            tenant_id text NOT NULL,
            node_id text NOT NULL,
            tag text NOT NULL,
            PRIMARY KEY (tenant_id, node_id, tag),
            FOREIGN KEY (tenant_id, node_id) REFERENCES content_nodes (tenant_id, id)
                ON DELETE CASCADE)""",
        "CREATE INDEX content_tags_tag ON content_tags (tenant_id, tag, node_id)",
    ),
)

SCHEMA = Schema("content", (_NODES,))
