"""The access module's tables (API keys; each belongs to a tenant)."""

from __future__ import annotations

from ...store import SQLITE_NOW, Migration, Schema

__all__ = ("SCHEMA",)

# References tenants (id): the tenants module's schema is applied first.
_API_KEYS = Migration(
    version=1,
    name="api_keys",
    legacy_version=1,
    sqlite=(
        f"""CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            revoked_at TIMESTAMPTZ)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id)",
    ),
    postgresql=(
        """CREATE TABLE api_keys (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            key_hash text NOT NULL UNIQUE,
            role text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id)",
    ),
)

SCHEMA = Schema("access", (_API_KEYS,))
