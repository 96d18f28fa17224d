"""SQL of the plugin manager: grants and switches (each change audited in its transaction), storage.

Every write that an operator or a tenant makes goes with its audit row in one
unit of work, so a grant without its audit entry (or the reverse) cannot
exist. Storage writes are the plugin's own and are not audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._exceptions import InvalidInput
from .._json import InvalidJson, InvalidText, check, dumps
from ..modules.audit import AuditEntry, record
from ..store import StoreHandle, row_timestamp
from ..transport import Envelope
from ._api import Capabilities
from ._events import PluginChanged

__all__ = ("MAX_VALUE_BYTES", "GrantRecord", "PluginRepository")

#: Largest storage value (its JSON text), and longest key.
MAX_VALUE_BYTES = 65_536
MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """What an operator decided for a plugin, as stored."""

    name: str
    enabled: bool
    grants: Capabilities
    version: str
    changed_by: str
    changed_at: datetime


def _key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"a storage key is 1-{MAX_KEY_LENGTH} printable characters", field="key")
    return key


class PluginRepository:
    """The tables of :mod:`~triotok.plugins._schema` over the application's store."""

    def __init__(self, handle: StoreHandle) -> None:
        self._handle = handle

    # ---------------------------------------------------------------- grants

    async def grants(self) -> dict[str, GrantRecord]:
        rows = await self._handle.store.fetch(
            "SELECT name, enabled, grants, version, changed_by, changed_at FROM plugin_grants"
        )
        return {
            str(r["name"]): GrantRecord(
                str(r["name"]),
                bool(r["enabled"]),
                Capabilities.from_dict(json.loads(r["grants"])),
                str(r["version"]),
                str(r["changed_by"]),
                row_timestamp(r["changed_at"]),
            )
            for r in rows
        }

    async def set_grant(
        self,
        name: str,
        *,
        enabled: bool,
        grants: Capabilities,
        version: str,
        who: str,
        audit_tenant: str | None,
        action: str,
    ) -> None:
        """Record an enable or disable (with its grant) and its audit entry, in one unit."""
        now = datetime.now(UTC)
        text = dumps(grants.as_dict(), sort_keys=True)
        async with self._handle.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO plugin_grants (name, enabled, grants, version, changed_by, changed_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET"
                " enabled = $2, grants = $3, version = $4, changed_by = $5, changed_at = $6",
                name,
                enabled,
                text,
                version,
                who,
                now,
            )
            detail = {"version": version, "grants": grants.as_dict()}
            await record(
                tx, AuditEntry(who, action, f"plugin/{name}", audit_tenant, detail), at=now
            )
            await tx.publish(Envelope.new(PluginChanged(name, "grant")))

    # ---------------------------------------------------------------- tenants' switches

    async def switched_on(self) -> dict[str, set[str]]:
        """For each plugin, the tenants that switched it on."""
        rows = await self._handle.store.fetch(
            "SELECT plugin, tenant_id FROM plugin_tenants WHERE enabled = $1", True
        )
        out: dict[str, set[str]] = {}
        for row in rows:
            out.setdefault(str(row["plugin"]), set()).add(str(row["tenant_id"]))
        return out

    async def switch(self, name: str, tenant_id: str, on: bool, *, who: str) -> None:
        now = datetime.now(UTC)
        async with self._handle.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO plugin_tenants (plugin, tenant_id, enabled, changed_by, changed_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin, tenant_id) DO UPDATE SET"
                " enabled = $3, changed_by = $4, changed_at = $5",
                name,
                tenant_id,
                on,
                who,
                now,
            )
            action = "plugin.switch_on" if on else "plugin.switch_off"
            await record(tx, AuditEntry(who, action, f"plugin/{name}", tenant_id), at=now)
            await tx.publish(Envelope.new(PluginChanged(name, "tenant"), tenant_id=tenant_id))

    async def audit(self, entry: AuditEntry) -> None:
        async with self._handle.store.transaction() as tx:
            await record(tx, entry)

    # ---------------------------------------------------------------- storage

    async def get(self, namespace: str, tenant_id: str, key: str) -> Any:
        text = await self._handle.store.fetchval(
            "SELECT value FROM plugin_storage WHERE namespace = $1 AND tenant_id = $2 AND key = $3",
            namespace,
            tenant_id,
            _key(key),
        )
        return None if text is None else json.loads(text)

    async def put(self, namespace: str, tenant_id: str, key: str, value: Any) -> None:
        try:
            check(value)
            text = dumps(value, sort_keys=True)
        except (InvalidJson, InvalidText, TypeError, ValueError) as exc:
            raise InvalidInput(f"a storage value must be JSON data: {exc}", field="value") from None
        if len(text.encode()) > MAX_VALUE_BYTES:
            raise InvalidInput(f"a storage value is at most {MAX_VALUE_BYTES} bytes", field="value")
        async with self._handle.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO plugin_storage (namespace, tenant_id, key, value, updated_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (namespace, tenant_id, key)"
                " DO UPDATE SET value = $4, updated_at = $5",
                namespace,
                tenant_id,
                _key(key),
                text,
                datetime.now(UTC),
            )

    async def delete(self, namespace: str, tenant_id: str, key: str) -> bool:
        async with self._handle.store.transaction() as tx:
            count = await tx.execute(
                "DELETE FROM plugin_storage WHERE namespace = $1 AND tenant_id = $2 AND key = $3",
                namespace,
                tenant_id,
                _key(key),
            )
        return count > 0

    async def list(
        self, namespace: str, tenant_id: str, prefix: str, after: str, limit: int
    ) -> list[tuple[str, Any]]:
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit is 1 to 1000", field="limit")
        if not isinstance(prefix, str) or not isinstance(after, str):
            raise InvalidInput("prefix and after are text", field="prefix")
        # substr, not LIKE: a key may hold % and _.
        rows = await self._handle.store.fetch(
            "SELECT key, value FROM plugin_storage WHERE namespace = $1 AND tenant_id = $2"
            " AND substr(key, 1, $3) = $4 AND key > $5 ORDER BY key LIMIT $6",
            namespace,
            tenant_id,
            len(prefix),
            prefix,
            after,
            limit,
        )
        return [(str(r["key"]), json.loads(r["value"])) for r in rows]
