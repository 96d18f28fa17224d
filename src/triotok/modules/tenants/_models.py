"""The tenants module's HTTP models: what ``/api/tenants`` reads and answers.

msgspec Structs, declared once: the HTTP layer validates request bodies and
queries with them, and ``/openapi.json`` publishes them as the components
``Tenant``, ``TenantList``, ``TenantCreate`` and ``TenantUpdate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from msgspec import UNSET, Meta, Struct, UnsetType

from ..._text import NAME_PATTERN, whole_match
from ._model import TENANT_ID_PATTERN

__all__ = ("Tenant", "TenantCreate", "TenantList", "TenantPage", "TenantUpdate")

#: A tenant id, whole (see ``whole_match``: the same rule for msgspec and JSON Schema).
TenantId = Annotated[
    str, Meta(pattern=whole_match(TENANT_ID_PATTERN), examples=["acme"], description="Tenant id")
]
# No control or format characters (bidi overrides, zero-width spaces): see triotok._text.
TenantName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="Display name: no control or invisible format characters",
    ),
]
Settings = Annotated[dict[str, Any], Meta(max_length=100, description="Free-form settings")]
Version = Annotated[int, Meta(ge=1, le=2**63 - 1)]

_TENANT: dict[str, Any] = {
    "id": "acme",
    "name": "Acme Corp",
    "active": True,
    "settings": {"plan": "pro"},
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:00:00+00:00",
    "version": 1,
}


class Tenant(Struct, frozen=True):
    """A tenant: the unit of isolation; ``version`` counts its updates."""

    id: TenantId
    name: str
    active: bool
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _TENANT


class TenantList(Struct, frozen=True):
    """A page of tenants, by id."""

    items: list[Tenant]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_TENANT]}


class TenantCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A new tenant."""

    id: TenantId
    name: TenantName
    settings: Settings | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "acme",
        "name": "Acme Corp",
        "settings": {"plan": "pro"},
    }


class TenantUpdate(Struct, frozen=True, forbid_unknown_fields=True):
    """Changes to a tenant; with ``version``, only if it is still that version (else 409)."""

    name: TenantName | UnsetType = UNSET
    settings: Settings | UnsetType = UNSET
    version: Version | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"name": "Acme Inc", "version": 1}


class TenantPage(Struct, frozen=True):
    """``GET /api/tenants``: keyset pagination, ids after ``after``."""

    after: TenantId | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 100
