"""The audit module: the ``audit_log`` table, ``GET /api/audit`` and ``audit:read``.

Every module writes its entries inside the unit of work of the change they
describe, with :func:`triotok.modules.audit.record` (a change without its
audit row, or the reverse, cannot exist)::

    async with store.transaction() as tx:
        await tx.execute("UPDATE tenants SET name = $1 WHERE id = $2", name, tenant_id)
        await record(tx, AuditEntry("key:k1", "tenant.update", f"tenant/{tenant_id}", tenant_id))
"""

from __future__ import annotations

from ..._util import fixup_module_metadata
from .._audit import AuditEntry as AuditEntry
from .._audit import AuditRecord as AuditRecord
from .._audit import list_entries as list_entries
from .._audit import record as record
from .._module import Grant, Module
from .._permissions import Permission
from ._schema import SCHEMA

__all__ = ("AUDIT", "AuditEntry", "AuditRecord", "list_entries", "record")


def _routes() -> tuple[object, ...]:
    from ._routes import ROUTES

    return ROUTES


#: The audit module's declaration.
AUDIT = Module(
    name="audit",
    migrations=SCHEMA.migrations,
    permissions=(Grant(Permission("audit", "read"), ("admin",)),),
    routes=_routes,
    description="who did what to which resource, written in the same unit of work",
)

fixup_module_metadata(__name__, globals())
