"""Content nodes in the store: loads and writes guarded by ``version``.

Invariants:

* Every write runs in the caller's unit of work together with its event and
  audit row, and compares the node's ``version`` (``UPDATE ... WHERE version
  = $expected``): a write based on a stale read changes nothing and raises
  :class:`StaleNode`, whichever node of the cluster made the newer write.
* Writes are deferred statements (``tx.defer``): a command's whole unit of
  work (node, translations, tags, event, audit) is one round trip to the
  database, and their errors are raised when it commits. Slugs are guarded by
  the unique index alone; :meth:`ContentRepository.explain` turns its
  violation into :class:`SlugTaken`, naming the node that holds the slug.
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
        """Queue the node's rows in ``tx`` (see :meth:`explain` for the errors of its commit)."""
        tx.defer(
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
        self._write_children(tx, node)

    async def save(self, tx: UnitOfWork, node: ContentNode, expected_version: int) -> None:
        """Write ``node`` over the stored row at ``expected_version``; :class:`StaleNode` if not.

        Deferred: the error is raised by the round trip that runs the update
        (the commit, unless the caller runs a statement first).
        """
        tx.defer(
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
            expect=1,
            error=StaleNode(f"node {node.id} changed since version {expected_version}; retry"),
        )
        tx.defer(
            "DELETE FROM content_translations WHERE tenant_id = $1 AND node_id = $2",
            node.tenant_id,
            node.id,
        )
        tx.defer(
            "DELETE FROM content_tags WHERE tenant_id = $1 AND node_id = $2",
            node.tenant_id,
            node.id,
        )
        self._write_children(tx, node)

    async def delete(self, tx: UnitOfWork, node: ContentNode) -> None:
        """Delete the node at its version; :class:`StaleNode` (deferred) if it changed."""
        tx.defer(
            "DELETE FROM content_nodes WHERE tenant_id = $1 AND id = $2 AND version = $3",
            node.tenant_id,
            node.id,
            node.version,
            expect=1,
            error=StaleNode(f"node {node.id} changed since version {node.version}; retry"),
        )

    def _write_children(self, tx: UnitOfWork, node: ContentNode) -> None:
        tx.defer_many(
            "INSERT INTO content_translations (tenant_id, node_id, locale, title, slug,"
            " excerpt, body, body_format) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                (
                    node.tenant_id,
                    node.id,
                    t.locale,
                    t.title,
                    t.slug,
                    t.excerpt,
                    t.body,
                    t.body_format,
                )
                for t in node.translations
            ],
        )
        tx.defer_many(
            "INSERT INTO content_tags (tenant_id, node_id, tag) VALUES ($1, $2, $3)",
            [(node.tenant_id, node.id, tag) for tag in node.tags],
        )

    # ------------------------------------------------------------------ conflicts

    async def explain(self, store: Store, node: ContentNode, error: ConflictError) -> Exception:
        """What a conflict raised by writing ``node`` means: :class:`SlugTaken`, or ``error``.

        Only a violation of the slug index is a taken slug; the node holding
        it is looked up afresh (committed data). If none holds it any more
        (it was renamed or deleted meanwhile) ``error`` stays as it is: a
        :class:`ConflictError`, on which the entity region retries the command.
        """
        if not error.violates("content_translations", "tenant_id", "locale", "slug"):
            return error
        for t in node.translations:
            other = await store.fetchval(
                "SELECT node_id FROM content_translations WHERE tenant_id = $1 AND locale = $2"
                " AND slug = $3 AND node_id <> $4",
                node.tenant_id,
                t.locale,
                t.slug,
                node.id,
            )
            if other is not None:
                return SlugTaken(f"slug {t.slug!r} is taken in locale {t.locale} by node {other}")
        return error
