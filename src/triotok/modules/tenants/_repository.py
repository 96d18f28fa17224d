"""Tenant persistence: reads, and writes that publish their event and audit row atomically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import ConflictError, NotFound
from ..._json import check, dumps
from ...store import StoreHandle
from ...transport import Envelope
from .._audit import AuditEntry, record
from ._model import Tenant, TenantCreated, TenantDeactivated, TenantUpdated

__all__ = ("TenantRepository", "TenantRepositoryStatistics")

_COLUMNS = "id, name, active, settings, created_at, updated_at, version"


@dataclass(frozen=True, slots=True)
class TenantRepositoryStatistics:
    """``lookups``: single-tenant reads sent to the store (cache misses end up here)."""

    lookups: int
    writes: int


class TenantRepository:
    """Tenants in the store; every write is one unit of work: row + outbox event + audit.

    ``trace_id`` (a W3C traceparent) and ``actor`` are carried into the event
    envelope so consumers can follow a change back to the request that caused it.
    """

    def __init__(self, handle: StoreHandle) -> None:
        self._handle = handle
        self._lookups = 0
        self._writes = 0

    def statistics(self) -> TenantRepositoryStatistics:
        return TenantRepositoryStatistics(self._lookups, self._writes)

    async def get(self, tenant_id: str) -> Tenant | None:
        """One tenant, or ``None`` (the resolver's loader)."""
        self._lookups += 1
        row = await self._handle.store.fetchrow(
            f"SELECT {_COLUMNS} FROM tenants WHERE id = $1", tenant_id
        )
        return None if row is None else Tenant.from_row(row)

    async def list(self, *, after: str = "", limit: int = 100) -> list[Tenant]:
        """Tenants ordered by id, starting after ``after`` (keyset pagination)."""
        rows = await self._handle.store.fetch(
            f"SELECT {_COLUMNS} FROM tenants WHERE id > $1 ORDER BY id LIMIT $2", after, limit
        )
        return [Tenant.from_row(r) for r in rows]

    async def create(
        self,
        tenant_id: str,
        name: str,
        settings: dict[str, Any] | None = None,
        *,
        actor: str,
        trace_id: str | None = None,
    ) -> Tenant:
        """Insert a tenant; :class:`ConflictError` if the id exists."""
        now = datetime.now(UTC)
        async with self._handle.store.transaction() as tx:
            exists = await tx.fetchval("SELECT 1 FROM tenants WHERE id = $1", tenant_id)
            if exists is not None:
                raise ConflictError(f"tenant {tenant_id!r} already exists")
            await tx.execute(
                "INSERT INTO tenants (id, name, active, settings, created_at, updated_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $5, 1)",
                tenant_id,
                name,
                True,
                _settings_json(settings or {}),
                now,
            )
            payload = TenantCreated(tenant_id, name)
            await tx.publish(_envelope(payload, tenant_id, actor, trace_id))
            await record(tx, AuditEntry(actor, "tenant.create", f"tenant/{tenant_id}", tenant_id))
            row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
        self._writes += 1
        assert row is not None
        return Tenant.from_row(row)

    async def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
        expected_version: int | None = None,
        actor: str,
        trace_id: str | None = None,
    ) -> Tenant:
        """Change name and/or settings; :class:`NotFound`, or :class:`ConflictError` on a stale
        ``expected_version``."""
        async with self._handle.store.transaction() as tx:
            current = await self._locked(tx, tenant_id, expected_version)
            new_name = current.name if name is None else name
            version = current.version + 1
            # Settings are written only when given: a rename never rewrites them
            # (they may be what an earlier version stored, unreadable here).
            changed_rows = await tx.execute(
                "UPDATE tenants SET name = $1, settings = coalesce($2, settings),"
                " updated_at = $3, version = $4 WHERE id = $5 AND version = $6",
                new_name,
                None if settings is None else _settings_json(settings),
                datetime.now(UTC),
                version,
                tenant_id,
                current.version,
            )
            _check_one(changed_rows, tenant_id)
            await tx.publish(
                _envelope(TenantUpdated(tenant_id, version), tenant_id, actor, trace_id)
            )
            changed = sorted(
                k for k, v in (("name", name), ("settings", settings)) if v is not None
            )
            await record(
                tx,
                AuditEntry(
                    actor, "tenant.update", f"tenant/{tenant_id}", tenant_id, {"fields": changed}
                ),
            )
            row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
        self._writes += 1
        assert row is not None
        return Tenant.from_row(row)

    async def deactivate(
        self, tenant_id: str, *, actor: str, trace_id: str | None = None
    ) -> Tenant:
        """Mark a tenant inactive (idempotent: deactivating twice changes nothing)."""
        async with self._handle.store.transaction() as tx:
            current = await self._locked(tx, tenant_id, None)
            if current.active:
                version = current.version + 1
                changed_rows = await tx.execute(
                    "UPDATE tenants SET active = $1, updated_at = $2, version = $3"
                    " WHERE id = $4 AND version = $5",
                    False,
                    datetime.now(UTC),
                    version,
                    tenant_id,
                    current.version,
                )
                _check_one(changed_rows, tenant_id)
                await tx.publish(
                    _envelope(TenantDeactivated(tenant_id, version), tenant_id, actor, trace_id)
                )
                await record(
                    tx, AuditEntry(actor, "tenant.deactivate", f"tenant/{tenant_id}", tenant_id)
                )
            row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
        self._writes += 1
        assert row is not None
        return Tenant.from_row(row)

    async def _locked(self, tx: Any, tenant_id: str, expected_version: int | None) -> Tenant:
        row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
        if row is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        tenant = Tenant.from_row(row)
        if expected_version is not None and expected_version != tenant.version:
            raise ConflictError(
                f"tenant {tenant_id!r} is at version {tenant.version}, not {expected_version}"
            )
        return tenant


def _envelope(payload: Any, tenant_id: str, actor: str, trace_id: str | None) -> Envelope:
    return Envelope.new(payload, tenant_id=tenant_id, trace_id=trace_id, actor_id=actor)


def _settings_json(settings: dict[str, Any]) -> str:
    # The HTTP boundary refused anything else already; other callers get a ValueError.
    check(settings)
    return dumps(settings, sort_keys=True)


def _check_one(changed: int, tenant_id: str) -> None:
    # Another node changed the row between our read and our write (PostgreSQL).
    if changed != 1:
        raise ConflictError(f"tenant {tenant_id!r} changed concurrently; retry")
