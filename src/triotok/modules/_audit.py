"""Writing and reading the audit log: who did what to which resource of which tenant, and when.

Entries are written inside the same store transaction as the change they
describe, so a change without its audit row (or the reverse) cannot exist::

    async with store.transaction() as tx:
        await tx.execute("UPDATE tenants SET name = $1 WHERE id = $2", name, tenant_id)
        await record(tx, AuditEntry("key:k1", "tenant.update", f"tenant/{tenant_id}", tenant_id))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..store import Row, Store, UnitOfWork

__all__ = ("AuditEntry", "AuditRecord", "list_entries", "record", "record_deferred")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One mutation: ``actor`` (``key:<id>`` or ``system``), ``action``, ``resource``."""

    actor: str
    action: str
    resource: str
    tenant_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as stored, with its id and time."""

    id: int
    actor: str
    action: str
    resource: str
    tenant_id: str | None
    at: datetime
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "tenant_id": self.tenant_id,
            "at": self.at.isoformat(),
            "detail": self.detail,
        }


_INSERT = (
    "INSERT INTO audit_log (tenant_id, actor, action, resource, at, detail)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


def _params(entry: AuditEntry, at: datetime | None) -> tuple[Any, ...]:
    return (
        entry.tenant_id,
        entry.actor,
        entry.action,
        entry.resource,
        at or datetime.now(UTC),
        json.dumps(entry.detail, sort_keys=True),
    )


async def record(tx: UnitOfWork, entry: AuditEntry, *, at: datetime | None = None) -> None:
    """Write ``entry`` in the transaction ``tx``."""
    await tx.execute(_INSERT, *_params(entry, at))


def record_deferred(tx: UnitOfWork, entry: AuditEntry, *, at: datetime | None = None) -> None:
    """Queue ``entry`` in ``tx`` for its next round trip (``tx.defer``; see :func:`record`)."""
    tx.defer(_INSERT, *_params(entry, at))


async def list_entries(store: Store, tenant_id: str, *, limit: int = 100) -> list[AuditRecord]:
    """The most recent entries of ``tenant_id``, newest first."""
    rows = await store.fetch(
        "SELECT id, tenant_id, actor, action, resource, at, detail FROM audit_log"
        " WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        tenant_id,
        limit,
    )
    return [_from_row(r) for r in rows]


def _from_row(row: Row) -> AuditRecord:
    at = row["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    detail = row["detail"]
    return AuditRecord(
        id=int(row["id"]),
        actor=str(row["actor"]),
        action=str(row["action"]),
        resource=str(row["resource"]),
        tenant_id=row["tenant_id"],
        at=at,
        detail=json.loads(detail) if isinstance(detail, str) and detail else {},
    )
