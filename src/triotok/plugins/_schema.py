"""The plugin manager's tables: operators' grants, tenants' switches, plugins' storage.

* ``plugin_grants``: one row per plugin an operator ever enabled; ``enabled``
  and the granted capabilities (JSON) survive restarts, so a plugin enabled
  once comes back enabled with the same grant.
* ``plugin_tenants``: a tenant's switch for a plugin (no row: off).
* ``plugin_storage``: the scoped key-value storage, keyed by
  ``(namespace, tenant_id, key)``; values are JSON text.

A plugin's own migrations (inline plugins only) are tracked under the
module name ``plugin.<name>`` in ``module_migrations``.
"""

from __future__ import annotations

from ..store import Migration, Schema

__all__ = ("SCHEMA",)


def _tables(text: str, time: str, boolean: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE plugin_grants (
            name {text} PRIMARY KEY,
            enabled {boolean} NOT NULL,
            grants {text} NOT NULL,
            version {text} NOT NULL,
            changed_by {text} NOT NULL,
            changed_at {time} NOT NULL)""",
        f"""CREATE TABLE plugin_tenants (
            plugin {text} NOT NULL,
            tenant_id {text} NOT NULL,
            enabled {boolean} NOT NULL,
            changed_by {text} NOT NULL,
            changed_at {time} NOT NULL,
            PRIMARY KEY (plugin, tenant_id))""",
        f"""CREATE TABLE plugin_storage (
            namespace {text} NOT NULL,
            tenant_id {text} NOT NULL,
            key {text} NOT NULL,
            value {text} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (namespace, tenant_id, key))""",
    )


_V1 = Migration(
    1,
    "plugin_grants, plugin_tenants, plugin_storage",
    sqlite=_tables("TEXT", "TIMESTAMPTZ", "BOOLEAN"),
    postgresql=_tables("text", "timestamptz", "boolean"),
)

#: Applied with every application's schemas (``/app/store`` at start).
SCHEMA = Schema("plugins", (_V1,))
