"""The audit module's route: ``GET /api/audit``.

The only file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from ...http import Call, Route
from .._audit import list_entries
from .._permissions import Permission
from . import _models as models

__all__ = ("ROUTES",)


async def audit_log(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    query: models.AuditQuery = call.query
    entries = await list_entries(call.services.store.store, call.tenant.id, limit=query.limit)
    return {"items": [e.as_dict() for e in entries]}


ROUTES = (
    Route(
        "GET",
        "/api/audit",
        audit_log,
        "The caller's tenant's audit log, newest first",
        "audit",
        Permission("audit", "read"),
        operation_id="getAuditLog",
        query=models.AuditQuery,
        response=models.AuditLog,
    ),
)
