"""The audit module's route: ``GET /api/audit``.

The only file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from ...http import Call, Route, list_of
from .._audit import list_entries
from .._permissions import Permission

__all__ = ("ROUTES",)


async def audit_log(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    entries = await list_entries(
        call.services.store.store, call.tenant.id, limit=int(call.query.get("limit", 100))
    )
    return {"items": [e.as_dict() for e in entries]}


_AUDIT_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "resource": {"type": "string"},
        "tenant_id": {"type": ["string", "null"]},
        "at": {"type": "string", "format": "date-time"},
        "detail": {"type": "object"},
    },
    "required": ["id", "actor", "action", "resource", "at"],
}


ROUTES = (
    Route(
        "GET",
        "/api/audit",
        audit_log,
        "The caller's tenant's audit log, newest first",
        "audit",
        Permission("audit", "read"),
        query={"limit": {"type": "integer", "minimum": 1, "maximum": 500}},
        response=list_of(_AUDIT_ENTRY),
    ),
)
