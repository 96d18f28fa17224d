"""The content node entity: one actor per ``(tenant_id, node_id)``, its commands in order.

Invariants:

* The entity's state is the stored row as of its last load or write
  (``on_start`` loads it; a region restart after a crash or a stale write
  reloads it), or ``None`` while the node does not exist.
* An entity activated by a ``CreateNode`` does not load: for a new id there
  is no row to find. The primary key still decides: if the row exists after
  all, the insert's unique violation makes the entity load it and answer
  ``NodeExists``, as if it had loaded first. Until a create succeeds or that
  load happens the state is *unknown*, and any other command loads it first.
* Writes are one round trip: the unit of work defers every statement
  (``tx.defer``), so the errors of a write (a taken slug, a stale version)
  are raised when it commits, and mapped there.
* Every accepted command writes the row, exactly one event and one audit
  entry in one unit of work, then replaces the state; a refused command
  (invalid input, an illegal transition, a version that does not match)
  writes nothing and leaves the state as it was.
* A write is guarded by ``version``: if another activation (on another node)
  wrote first, the write raises ``StaleNode``; the region reloads the state
  and retries the command once, where the caller's ``expected_version``
  (``If-Match``) then decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import (
    Conflict,
    ConflictError,
    DomainError,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)
from ...actors import Actor, Failure, UnknownMessage
from ...store import StoreHandle, UnitOfWork
from .._commands import Who, record_change
from ._lifecycle import Command, Status, apply
from ._model import (
    ContentNode,
    NodeArchived,
    NodeCreated,
    NodeDeleted,
    NodePublished,
    NodeRestored,
    NodeUnpublished,
    NodeUpdated,
    Translation,
)
from ._repository import ContentRepository

__all__ = (
    "CreateNode",
    "GetNode",
    "NodeEntity",
    "NodeExists",
    "TransitionNode",
    "UpdateNode",
    "VersionMismatch",
    "Who",
)


class VersionMismatch(PreconditionFailed):
    """The caller's expected version is not the node's current one."""

    code = "version_mismatch"


class NodeExists(Conflict):
    """A node with this id exists already."""

    code = "node_exists"


@dataclass(frozen=True, slots=True)
class GetNode:
    """Answer the current node (``NotFound`` if there is none)."""


@dataclass(frozen=True, slots=True)
class CreateNode:
    """Create the node as a draft."""

    kind: str
    translations: tuple[Translation, ...]
    who: Who
    parent_id: str | None = None
    position: int | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateNode:
    """Change content fields; ``changes`` holds only what the caller sent."""

    changes: Mapping[str, Any]
    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class TransitionNode:
    """Run a lifecycle command (publish, unpublish, archive, restore, delete)."""

    command: Command
    who: Who
    expected_version: int | None = None


#: The event each lifecycle command writes (delete has its own, without a snapshot).
_TRANSITION_EVENTS: Mapping[Command, type] = {
    Command.PUBLISH: NodePublished,
    Command.UNPUBLISH: NodeUnpublished,
    Command.ARCHIVE: NodeArchived,
    Command.RESTORE: NodeRestored,
}

#: The messages a node entity takes; anything else is refused with ``UnknownMessage``.
_COMMANDS = (GetNode, CreateNode, UpdateNode, TransitionNode)


class NodeEntity(Actor):
    """The entity of one content node (see the module docstring)."""

    def __init__(
        self, key: tuple[str, str], store: StoreHandle, repository: ContentRepository
    ) -> None:
        self.tenant_id, self.node_id = key
        self._store = store
        self._repository = repository
        self.node: ContentNode | None = None
        #: ``node`` is the stored state (False: not loaded, see the module docstring).
        self.loaded = False

    async def on_start(self) -> None:
        if isinstance(self.ctx.peek(), CreateNode):
            return  # a create needs no load: the primary key decides (module docstring)
        # A store that is down is no crash: the state loads with the first command
        # (else activations during an outage would crash-loop and poison the key).
        try:
            await self._load()
        except StoreUnavailable:
            self.loaded = False

    async def _load(self) -> None:
        self.node = await self._repository.load(self._store.store, self.tenant_id, self.node_id)
        self.loaded = True

    async def receive(self, message: Any) -> ContentNode | Failure | None:
        # A refused command is an answer, not a crash: the caller gets the
        # domain error, the entity keeps its state and nothing is dead-lettered.
        # So is a store that is down (503 to the caller; nothing was written).
        try:
            if not self.loaded and not isinstance(message, CreateNode):
                await self._load()
            if isinstance(message, GetNode):
                return self._current()
            if isinstance(message, CreateNode):
                return await self._create(message)
            if isinstance(message, UpdateNode):
                return await self._update(message)
            if isinstance(message, TransitionNode):
                return await self._transition(message)
        except (DomainError, NotFound, StoreUnavailable) as refused:
            return Failure(refused)
        raise UnknownMessage(self.ctx.path, message, _COMMANDS)

    # ------------------------------------------------------------------ commands

    def _current(self) -> ContentNode:
        if self.node is None:
            raise NotFound(f"no content node {self.node_id}")
        return self.node

    def _expect(self, node: ContentNode, expected: int | None) -> None:
        if expected is not None and expected != node.version:
            raise VersionMismatch(
                f"node {node.id} is at version {node.version}, not {expected}",
                current_version=node.version,
            )

    async def _create(self, command: CreateNode) -> ContentNode:
        if self.node is not None:
            raise NodeExists(f"content node {self.node_id} exists already")
        now = datetime.now(UTC)
        node = ContentNode(
            tenant_id=self.tenant_id,
            id=self.node_id,
            kind=command.kind,
            status=Status.DRAFT,
            translations=command.translations,
            parent_id=command.parent_id,
            position=command.position,
            tags=command.tags,
            created_at=now,
            updated_at=now,
            version=1,
        )

        async def write(tx: UnitOfWork) -> None:
            await self._repository.insert(tx, node)
            await self._record(
                tx, NodeCreated(node.snapshot()), "content.node.create", command.who, node
            )

        await self._write(node, write, creating=True)
        self.node, self.loaded = node, True
        return node

    async def _update(self, command: UpdateNode) -> ContentNode:
        current = self._current()
        self._expect(current, command.expected_version)
        node = current.with_changes(
            **command.changes, updated_at=datetime.now(UTC), version=current.version + 1
        )
        fields = tuple(sorted(command.changes))

        async def write(tx: UnitOfWork) -> None:
            await self._repository.save(tx, node, current.version)
            await self._record(
                tx,
                NodeUpdated(node.snapshot(), fields),
                "content.node.update",
                command.who,
                node,
                fields=list(fields),
            )

        await self._write(node, write)
        self.node = node
        return node

    async def _transition(self, command: TransitionNode) -> ContentNode | None:
        current = self._current()
        self._expect(current, command.expected_version)
        status = apply(current.status, command.command)
        now = datetime.now(UTC)
        if status is Status.DELETED:

            async def remove(tx: UnitOfWork) -> None:
                await self._repository.delete(tx, current)
                deleted = NodeDeleted(uuid.UUID(current.id), current.version + 1)
                await self._record(tx, deleted, "content.node.delete", command.who, current)

            await self._write(current, remove)
            self.node = None
            return None
        published_at = current.published_at
        if command.command is Command.PUBLISH:
            published_at = now
        node = current.with_changes(
            status=status, updated_at=now, published_at=published_at, version=current.version + 1
        )
        event_type = _TRANSITION_EVENTS[command.command]

        async def write(tx: UnitOfWork) -> None:
            await self._repository.save(tx, node, current.version)
            await self._record(
                tx,
                event_type(node.snapshot()),
                f"content.node.{command.command.value}",
                command.who,
                node,
            )

        await self._write(node, write)
        self.node = node
        return node

    # ------------------------------------------------------------------ plumbing

    async def _write(
        self,
        node: ContentNode,
        write: Callable[[UnitOfWork], Awaitable[None]],
        *,
        creating: bool = False,
    ) -> None:
        """Run ``write(tx)`` in one unit of work and say what its conflicts mean.

        A taken slug becomes :class:`SlugTaken`; creating over an existing
        row loads it and answers :class:`NodeExists`. Any other conflict
        (a stale version) is raised as it is, for the region to retry.
        """
        try:
            async with self._store.store.transaction() as tx:
                await write(tx)
        except ConflictError as conflict:
            if creating:
                # The row may exist after all (whichever key the database
                # reported first): answer as an entity that had loaded it would.
                await self._load()
                if self.node is not None:
                    raise NodeExists(f"content node {self.node_id} exists already") from None
            explained = await self._repository.explain(self._store.store, node, conflict)
            if explained is conflict:
                raise
            raise explained from conflict

    async def _record(
        self, tx: Any, payload: object, action: str, who: Who, node: ContentNode, **detail: Any
    ) -> None:
        await record_change(
            tx,
            payload,
            tenant_id=self.tenant_id,
            who=who,
            action=action,
            resource=f"content/{node.id}",
            **detail,
        )
