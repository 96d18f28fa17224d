"""The flags module's HTTP models: ``/system/flags`` (operators) and ``/api/flags`` (tenants)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from ..._text import NAME_PATTERN, whole_match
from ..._util import TENANT_ID_PATTERN
from .._flags import FLAG_NAME

__all__ = (
    "FlagDefinition",
    "FlagList",
    "FlagView",
    "TenantFlag",
    "TenantFlagChoice",
    "TenantFlagList",
)

FlagName = Annotated[str, Meta(pattern=whole_match(FLAG_NAME.pattern), examples=["checkout.v2"])]
TenantId = Annotated[str, Meta(pattern=whole_match(TENANT_ID_PATTERN))]
Tenants = Annotated[list[TenantId], Meta(max_length=10_000)]
Rollout = Annotated[float, Meta(ge=0, le=100, description="Percent of tenants (or keys)")]
Description = Annotated[str, Meta(max_length=500, pattern=NAME_PATTERN)]

_FLAG: dict[str, Any] = {
    "name": "checkout.v2",
    "description": "the new checkout",
    "enabled": True,
    "rollout": 25.0,
    "by": "tenant",
    "allow": ["acme"],
    "deny": [],
    "tenant_editable": False,
    "version": 3,
    "updated_at": "2026-01-01T12:00:00+00:00",
}


class FlagDefinition(Struct, frozen=True, forbid_unknown_fields=True):
    """A flag's rules (``PUT /system/flags/{name}`` creates or replaces them)."""

    enabled: bool
    rollout: Rollout = 100.0
    by: Literal["tenant", "key"] = "tenant"
    allow: Tenants = []
    deny: Tenants = []
    tenant_editable: bool = False
    description: Description = ""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        k: v for k, v in _FLAG.items() if k not in ("name", "version", "updated_at")
    }


class FlagView(Struct, frozen=True):
    """A flag as stored, with its version."""

    name: str
    description: str
    enabled: bool
    rollout: float
    by: str
    allow: list[str]
    deny: list[str]
    tenant_editable: bool
    version: int
    updated_at: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = _FLAG


class FlagList(Struct, frozen=True):
    """Every flag."""

    items: list[FlagView]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_FLAG]}


_TENANT_FLAG: dict[str, Any] = {
    "name": "checkout.v2",
    "description": "the new checkout",
    "enabled": True,
    "reason": "rollout",
    "tenant_editable": True,
    "tenant_value": None,
}


class TenantFlag(Struct, frozen=True):
    """A flag's value for the caller's tenant, the rule that decided, and the tenant's own value.

    ``reason``: ``off``, ``denied``, ``tenant`` (the tenant's own value),
    ``allowed``, ``rollout`` (in it) or ``excluded`` (outside it).
    """

    name: str
    description: str
    enabled: bool
    reason: str
    tenant_editable: bool
    tenant_value: bool | None

    EXAMPLE: ClassVar[dict[str, Any]] = _TENANT_FLAG


class TenantFlagList(Struct, frozen=True):
    """Every flag as the caller's tenant sees it."""

    items: list[TenantFlag]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_TENANT_FLAG]}


class TenantFlagChoice(Struct, frozen=True, forbid_unknown_fields=True):
    """The tenant's own value of a tenant-editable flag."""

    enabled: bool

    EXAMPLE: ClassVar[dict[str, Any]] = {"enabled": False}
