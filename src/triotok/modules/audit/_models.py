"""The audit module's HTTP models: ``AuditEntry`` and ``AuditLog`` in ``/openapi.json``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from msgspec import Meta, Struct

__all__ = ("AuditEntry", "AuditLog", "AuditQuery")

_ENTRY: dict[str, Any] = {
    "id": 42,
    "actor": "key:0123456789abcdef",
    "action": "tenant.update",
    "resource": "tenant/acme",
    "tenant_id": "acme",
    "at": "2024-05-01T12:00:00+00:00",
    "detail": {"version": 2},
}


class AuditEntry(Struct, frozen=True):
    """Who (``actor``) did what (``action``) to which ``resource``, and when."""

    id: int
    actor: str
    action: str
    resource: str
    tenant_id: str | None
    at: datetime
    detail: dict[str, Any]

    EXAMPLE: ClassVar[dict[str, Any]] = _ENTRY


class AuditLog(Struct, frozen=True):
    """A tenant's audit entries, newest first."""

    items: list[AuditEntry]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_ENTRY]}


class AuditQuery(Struct, frozen=True):
    """``GET /api/audit``: how many entries."""

    limit: Annotated[int, Meta(ge=1, le=500)] = 100
