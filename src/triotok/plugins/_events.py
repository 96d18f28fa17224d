"""The manager's own event: an operator's or a tenant's change, for every node to follow.

Published in the same unit of work as the change, it reaches every node
through the outbox feed; each node's manager then reads the plugin's grant
and switches again and starts or stops its own copy to match.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..transport import event

__all__ = ("PluginChanged",)


@event("plugin.changed")
@dataclass(frozen=True, slots=True)
class PluginChanged:
    """Plugin ``name``'s grant (``what="grant"``) or a tenant's switch (``"tenant"``) changed."""

    name: str
    what: str
