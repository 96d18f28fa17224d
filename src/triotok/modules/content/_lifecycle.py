"""A content node's lifecycle: a sans-I/O state machine (no trio, no store).

Invariants:

* A node is created ``draft``. The only transitions are the ones in
  :data:`TRANSITIONS`::

      draft ──publish──▶ published ──archive──▶ archived
        ▲                   │                     │
        └────unpublish──────┘                     │
        ▲                                         │
        └────────────────restore──────────────────┘

      delete: from draft or archived only (a published node is unpublished
      or archived first, so a live page never vanishes by accident).

* :func:`apply` either returns the next state or raises
  :class:`InvalidTransition` naming the current state and the commands it
  allows; it never half-applies. Every accepted command yields exactly one
  event type (:data:`EVENT_OF`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ..._exceptions import Conflict

__all__ = (
    "EVENT_OF",
    "TRANSITIONS",
    "Command",
    "InvalidTransition",
    "Status",
    "allowed",
    "apply",
)


class Status(enum.StrEnum):
    """Where a node is in its lifecycle (``deleted`` nodes are gone from the store)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    DELETED = "deleted"


class Command(enum.StrEnum):
    """A lifecycle command (edits of the content itself are not transitions)."""

    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    ARCHIVE = "archive"
    RESTORE = "restore"
    DELETE = "delete"


#: ``(state, command) -> next state``: everything the lifecycle allows.
TRANSITIONS: Mapping[tuple[Status, Command], Status] = {
    (Status.DRAFT, Command.PUBLISH): Status.PUBLISHED,
    (Status.PUBLISHED, Command.UNPUBLISH): Status.DRAFT,
    (Status.PUBLISHED, Command.ARCHIVE): Status.ARCHIVED,
    (Status.ARCHIVED, Command.RESTORE): Status.DRAFT,
    (Status.DRAFT, Command.DELETE): Status.DELETED,
    (Status.ARCHIVED, Command.DELETE): Status.DELETED,
}

#: The event type each accepted command writes.
EVENT_OF: Mapping[Command, str] = {
    Command.PUBLISH: "content.node.published",
    Command.UNPUBLISH: "content.node.unpublished",
    Command.ARCHIVE: "content.node.archived",
    Command.RESTORE: "content.node.restored",
    Command.DELETE: "content.node.deleted",
}


class InvalidTransition(Conflict):
    """The command is not allowed in the node's current state (names the allowed ones)."""

    code = "invalid_transition"

    def __init__(self, current: Status, command: Command) -> None:
        self.current = current
        self.command = command
        self.allowed = allowed(current)
        names = ", ".join(c.value for c in self.allowed) or "none"
        super().__init__(
            f"cannot {command.value} a {current.value} node (allowed: {names})",
            current=current.value,
            command=command.value,
            allowed=[c.value for c in self.allowed],
        )


def allowed(current: Status) -> tuple[Command, ...]:
    """The commands ``current`` accepts, in declaration order."""
    return tuple(c for c in Command if (current, c) in TRANSITIONS)


def apply(current: Status, command: Command) -> Status:
    """The state after ``command``, or :class:`InvalidTransition`."""
    try:
        return TRANSITIONS[current, command]
    except KeyError:
        raise InvalidTransition(current, command) from None
