"""The flags module's events: every node's flag cache reloads what they name."""

from __future__ import annotations

from dataclasses import dataclass

from ...transport import event

__all__ = ("FlagChanged", "FlagTenantChanged")


@event("flag.changed")
@dataclass(frozen=True, slots=True)
class FlagChanged:
    """Flag ``name`` was created, changed (``version``) or deleted (``deleted``)."""

    name: str
    version: int
    deleted: bool


@event("flag.tenant_changed")
@dataclass(frozen=True, slots=True)
class FlagTenantChanged:
    """A tenant set or cleared (``enabled`` is ``None``) its own value of flag ``name``."""

    name: str
    tenant_id: str
    enabled: bool | None
