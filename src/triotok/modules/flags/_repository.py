"""Flags in the store: reads for the cache, and writes with their event and audit row.

Every write is one unit of work: the row, a ``flag.*`` event (which makes
every node's cache reload what it names) and an audit entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ...store import Row, Store, UnitOfWork, row_timestamp
from .._commands import Who, record_change
from .._flags import Flag
from ._events import FlagChanged, FlagTenantChanged

__all__ = ("FlagRepository",)

_COLUMNS = (
    "name, description, enabled, rollout, subject, allow_list, deny_list, tenant_editable,"
    " version, updated_at"
)


def _flag(row: Row) -> Flag:
    return Flag(
        name=str(row["name"]),
        description=str(row["description"]),
        enabled=bool(row["enabled"]),
        rollout=float(row["rollout"]),
        allow=frozenset(json.loads(str(row["allow_list"]))),
        deny=frozenset(json.loads(str(row["deny_list"]))),
        by="key" if row["subject"] == "key" else "tenant",
        tenant_editable=bool(row["tenant_editable"]),
        version=int(row["version"]),
        updated_at=row_timestamp(row["updated_at"]).isoformat(),
    )


class FlagRepository:
    """The ``feature_flags`` and ``feature_flag_tenants`` tables."""

    async def all(self, store: Store) -> tuple[list[Flag], dict[tuple[str, str], bool]]:
        flags = [_flag(r) for r in await store.fetch(f"SELECT {_COLUMNS} FROM feature_flags")]
        rows = await store.fetch("SELECT name, tenant_id, enabled FROM feature_flag_tenants")
        values = {(str(r["name"]), str(r["tenant_id"])): bool(r["enabled"]) for r in rows}
        return flags, values

    async def get(self, store: Store | UnitOfWork, name: str) -> Flag | None:
        row = await store.fetchrow(f"SELECT {_COLUMNS} FROM feature_flags WHERE name = $1", name)
        return None if row is None else _flag(row)

    async def tenant_value(self, store: Store, name: str, tenant_id: str) -> bool | None:
        value = await store.fetchval(
            "SELECT enabled FROM feature_flag_tenants WHERE name = $1 AND tenant_id = $2",
            name,
            tenant_id,
        )
        return None if value is None else bool(value)

    async def put(self, store: Store, flag: Flag, who: Who, tenant_id: str) -> tuple[Flag, bool]:
        """Create or replace ``flag``; ``(stored flag, created)``. Its version: stored + 1.

        ``tenant_id`` is the operator's tenant, whose audit log records the change.
        """
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            current = await self.get(tx, flag.name)
            version = 1 if current is None else current.version + 1
            params: tuple[Any, ...] = (
                flag.name,
                flag.description,
                flag.enabled,
                float(flag.rollout),
                flag.by,
                json.dumps(sorted(flag.allow)),
                json.dumps(sorted(flag.deny)),
                flag.tenant_editable,
                version,
                now,
            )
            await tx.execute(
                f"INSERT INTO feature_flags ({_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (name) DO UPDATE SET description = $2, enabled = $3, rollout = $4,"
                " subject = $5, allow_list = $6, deny_list = $7, tenant_editable = $8,"
                " version = $9, updated_at = $10",
                *params,
            )
            stored = await self.get(tx, flag.name)
            assert stored is not None
            await record_change(
                tx,
                FlagChanged(flag.name, version, False),
                tenant_id=tenant_id,
                who=who,
                action="flag.create" if current is None else "flag.update",
                resource=f"flags/{flag.name}",
                **{k: v for k, v in stored.as_dict().items() if k not in ("name", "updated_at")},
            )
        return stored, current is None

    async def delete(self, store: Store, name: str, who: Who, tenant_id: str) -> bool:
        async with store.transaction() as tx:
            current = await self.get(tx, name)
            if current is None:
                return False
            await tx.execute("DELETE FROM feature_flags WHERE name = $1", name)
            await tx.execute("DELETE FROM feature_flag_tenants WHERE name = $1", name)
            await record_change(
                tx,
                FlagChanged(name, current.version, True),
                tenant_id=tenant_id,
                who=who,
                action="flag.delete",
                resource=f"flags/{name}",
            )
        return True

    async def set_tenant_value(
        self, store: Store, name: str, tenant_id: str, enabled: bool | None, who: Who
    ) -> None:
        """Set (or, with ``None``, clear) ``tenant_id``'s own value of ``name``."""
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            if enabled is None:
                await tx.execute(
                    "DELETE FROM feature_flag_tenants WHERE name = $1 AND tenant_id = $2",
                    name,
                    tenant_id,
                )
            else:
                await tx.execute(
                    "INSERT INTO feature_flag_tenants (name, tenant_id, enabled, updated_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (name, tenant_id)"
                    " DO UPDATE SET enabled = $3, updated_at = $4",
                    name,
                    tenant_id,
                    enabled,
                    now,
                )
            await record_change(
                tx,
                FlagTenantChanged(name, tenant_id, enabled),
                tenant_id=tenant_id,
                who=who,
                action="flag.tenant_set" if enabled is not None else "flag.tenant_clear",
                resource=f"flags/{name}",
                enabled=enabled,
            )
