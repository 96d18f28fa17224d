"""The tenants module's tables."""

from __future__ import annotations

from ...store import SQLITE_NOW, Migration, Schema

__all__ = ("SCHEMA",)

_TENANTS = Migration(
    version=1,
    name="tenants",
    legacy_version=1,
    sqlite=(
        f"""CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active BOOLEAN NOT NULL DEFAULT 1,
            settings TEXT NOT NULL DEFAULT '{{}}',
            created_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            updated_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            version INTEGER NOT NULL DEFAULT 1)""",
    ),
    postgresql=(
        """CREATE TABLE tenants (
            id text PRIMARY KEY,
            name text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            settings jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            version integer NOT NULL DEFAULT 1)""",
    ),
)

SCHEMA = Schema("tenants", (_TENANTS,))
