"""Content nodes in the store: loads and writes guarded by ``version``.

Invariants:

* Every write runs in the caller's unit of work together with its event and
  audit row, and compares the node's ``version`` (``UPDATE ... WHERE version
  = $expected``): a write based on a stale read changes nothing and raises
  :class:`StaleNode`, whichever node of the cluster made the newer write.
* Lists are not read here: the search module serves them from its read
  model, fed by this module's events.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..._exceptions import Conflict, ConflictError
from ...store import Row, Store, UnitOfWork, parse_timestamp, row_timestamp
from ._lifecycle import Status
from ._model import ContentNode, Translation

__all__ = ("ContentRepository", "SlugTaken", "StaleNode")

_NODE_COLUMNS = (
    "tenant_id, id, kind, status, parent_id, position, created_at, updated_at,"
    " published_at, version"
)


class StaleNode(ConflictError):
    """The node changed since it was read (another activation or node wrote it).

    A :class:`ConflictError`: the entity region reloads the state and retries
    the command once when a handler raises it.
    """

    code = "stale_version"


class SlugTaken(Conflict):
    """Another node of the tenant already uses this slug in this locale."""

    code = "slug_taken"


def _node(row: Row, translations: Sequence[Row], tags: Sequence[Row]) -> ContentNode:
    published = row["published_at"]
    return ContentNode(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        kind=str(row["kind"]),
        status=Status(row["status"]),
        translations=tuple(
            Translation(
                locale=str(t["locale"]),
                title=str(t["title"]),
                slug=str(t["slug"]),
                excerpt=str(t["excerpt"]),
                body=str(t["body"]),
                body_format=str(t["body_format"]),
            )
            for t in sorted(translations, key=lambda t: str(t["locale"]))
        ),
        parent_id=None if row["parent_id"] is None else str(row["parent_id"]),
        position=None if row["position"] is None else int(row["position"]),
        tags=tuple(sorted(str(t["tag"]) for t in tags)),
        created_at=row_timestamp(row["created_at"]),
        updated_at=row_timestamp(row["updated_at"]),
        published_at=parse_timestamp(published),
        version=int(row["version"]),
    )


class ContentRepository:
    """Reads and writes of content nodes; one instance per application."""

    def __init__(self) -> None:
        self.queries = 0  # statements sent by reads (the no-N+1 tests count them)

    # ------------------------------------------------------------------ reads

    async def load(
        self, store: Store | UnitOfWork, tenant_id: str, node_id: str
    ) -> ContentNode | None:
        """The node, or ``None`` if there is none."""
        self.queries += 3
        row = await store.fetchrow(
            f"SELECT {_NODE_COLUMNS} FROM content_nodes WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            node_id,
        )
        if row is None:
            return None
        translations = await store.fetch(
            "SELECT * FROM content_translations WHERE tenant_id = $1 AND node_id = $2",
            tenant_id,
            node_id,
        )
        tags = await store.fetch(
            "SELECT tag FROM content_tags WHERE tenant_id = $1 AND node_id = $2",
            tenant_id,
            node_id,
        )
        return _node(row, translations, tags)

    # ------------------------------------------------------------------ writes

    async def insert(self, tx: UnitOfWork, node: ContentNode) -> None:
        await self._check_slugs(tx, node)
        await tx.execute(
            f"INSERT INTO content_nodes ({_NODE_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            node.tenant_id,
            node.id,
            node.kind,
            node.status.value,
            node.parent_id,
            node.position,
            node.created_at,
            node.updated_at,
            node.published_at,
            node.version,
        )
        await self._write_children(tx, node)

    async def save(self, tx: UnitOfWork, node: ContentNode, expected_version: int) -> None:
        """Write ``node`` over the stored row at ``expected_version``; :class:`StaleNode` if not."""
        await self._check_slugs(tx, node)
        changed = await tx.execute(
            "UPDATE content_nodes SET kind = $1, status = $2, parent_id = $3, position = $4,"
            " updated_at = $5, published_at = $6, version = $7"
            " WHERE tenant_id = $8 AND id = $9 AND version = $10",
            node.kind,
            node.status.value,
            node.parent_id,
            node.position,
            node.updated_at,
            node.published_at,
            node.version,
            node.tenant_id,
            node.id,
            expected_version,
        )
        if changed != 1:
            raise StaleNode(f"node {node.id} changed since version {expected_version}; retry")
        await tx.execute(
            "DELETE FROM content_translations WHERE tenant_id = $1 AND node_id = $2",
            node.tenant_id,
            node.id,
        )
        await tx.execute(
            "DELETE FROM content_tags WHERE tenant_id = $1 AND node_id = $2",
            node.tenant_id,
            node.id,
        )
        await self._write_children(tx, node)

    async def delete(self, tx: UnitOfWork, node: ContentNode) -> None:
        changed = await tx.execute(
            "DELETE FROM content_nodes WHERE tenant_id = $1 AND id = $2 AND version = $3",
            node.tenant_id,
            node.id,
            node.version,
        )
        if changed != 1:
            raise StaleNode(f"node {node.id} changed since version {node.version}; retry")

    async def _write_children(self, tx: UnitOfWork, node: ContentNode) -> None:
        for t in node.translations:
            await tx.execute(
                "INSERT INTO content_translations (tenant_id, node_id, locale, title, slug,"
                " excerpt, body, body_format) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                node.tenant_id,
                node.id,
                t.locale,
                t.title,
                t.slug,
                t.excerpt,
                t.body,
                t.body_format,
            )
        for tag in node.tags:
            await tx.execute(
                "INSERT INTO content_tags (tenant_id, node_id, tag) VALUES ($1, $2, $3)",
                node.tenant_id,
                node.id,
                tag,
            )

    async def _check_slugs(self, tx: UnitOfWork, node: ContentNode) -> None:
        # The unique index decides in the end; this gives the client a clear error first.
        for t in node.translations:
            other = await tx.fetchval(
                "SELECT node_id FROM content_translations WHERE tenant_id = $1 AND locale = $2"
                " AND slug = $3 AND node_id <> $4",
                node.tenant_id,
                t.locale,
                t.slug,
                node.id,
            )
            if other is not None:
                raise SlugTaken(f"slug {t.slug!r} is taken in locale {t.locale} by node {other}")
