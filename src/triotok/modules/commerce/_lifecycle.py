"""A product's lifecycle: a sans-I/O state machine (no trio, no store).

Invariants:

* A product is created ``draft``. The only transitions are the ones in
  :data:`TRANSITIONS`::

      draft ──activate──▶ active          (only active products can be reserved)
        ▲                   │
        └────deactivate─────┘
      draft, active ──archive──▶ archived ──restore──▶ draft

* :func:`apply` either returns the next state or raises
  :class:`InvalidTransition` naming the current state and the commands it
  allows; it never half-applies. :func:`command_to` names the command that
  takes a product to a wanted status (what ``PATCH {"status": ...}`` asks).
* Products are never deleted: an archived product keeps its row, its sku and
  its history (orders refer to it), and can be restored.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ..._exceptions import Conflict

__all__ = (
    "TRANSITIONS",
    "Command",
    "InvalidTransition",
    "Status",
    "allowed",
    "apply",
    "command_to",
)


class Status(enum.StrEnum):
    """Where a product is in its lifecycle."""

    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class Command(enum.StrEnum):
    """A lifecycle command."""

    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    ARCHIVE = "archive"
    RESTORE = "restore"


#: ``(state, command) -> next state``: everything the lifecycle allows.
TRANSITIONS: Mapping[tuple[Status, Command], Status] = {
    (Status.DRAFT, Command.ACTIVATE): Status.ACTIVE,
    (Status.ACTIVE, Command.DEACTIVATE): Status.DRAFT,
    (Status.DRAFT, Command.ARCHIVE): Status.ARCHIVED,
    (Status.ACTIVE, Command.ARCHIVE): Status.ARCHIVED,
    (Status.ARCHIVED, Command.RESTORE): Status.DRAFT,
}


class InvalidTransition(Conflict):
    """The command is not allowed in the product's current state (names the allowed ones)."""

    code = "invalid_transition"

    def __init__(self, current: Status, command: Command) -> None:
        self.current = current
        self.command = command
        self.allowed = allowed(current)
        names = ", ".join(c.value for c in self.allowed) or "none"
        super().__init__(
            f"cannot {command.value} a {current.value} product (allowed: {names})",
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


def command_to(current: Status, target: Status) -> Command | None:
    """The command taking ``current`` to ``target`` (``None``: already there).

    Raises :class:`InvalidTransition` when no single command does it (the
    error names the command a client would most likely mean).
    """
    if current is target:
        return None
    for (source, command), after in TRANSITIONS.items():
        if source is current and after is target:
            return command
    wanted = {
        Status.ACTIVE: Command.ACTIVATE,
        Status.ARCHIVED: Command.ARCHIVE,
        Status.DRAFT: Command.DEACTIVATE,
    }
    raise InvalidTransition(current, wanted[target])
