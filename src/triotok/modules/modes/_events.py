"""The modes module's events.

``system.mode_override_set``/``_cleared`` travel through the outbox, so every
node applies the operator's override; ``system.mode_changed`` is published on
the node's local event feed only (the store may be what is down), when the
node's own mode changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...transport import event

__all__ = ("ModeChanged", "ModeOverrideCleared", "ModeOverrideSet")


@event("system.mode_override_set")
@dataclass(frozen=True, slots=True)
class ModeOverrideSet:
    """An operator chose the mode of every node, until ``expires_at`` (``None``: lifted by hand)."""

    mode: str
    reason: str
    actor: str
    expires_at: datetime | None


@event("system.mode_override_cleared")
@dataclass(frozen=True, slots=True)
class ModeOverrideCleared:
    """An operator ended the override: every node goes back to the mode its signals imply."""

    actor: str


@event("system.mode_changed")
@dataclass(frozen=True, slots=True)
class ModeChanged:
    """This node's mode changed; ``reasons`` name the signals (``store``, ``override``, ...)."""

    node: str
    from_mode: str
    to_mode: str
    reasons: list[str]
    details: list[str]
