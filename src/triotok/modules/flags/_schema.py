"""The flags module's tables: the flags, and tenants' own choices for tenant-editable ones."""

from __future__ import annotations

from ...store import Migration, Schema

__all__ = ("SCHEMA",)

_FLAGS = Migration(
    version=1,
    name="feature flags",
    sqlite=(
        """CREATE TABLE feature_flags (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            enabled BOOLEAN NOT NULL,
            rollout REAL NOT NULL,
            subject TEXT NOT NULL,
            allow_list TEXT NOT NULL DEFAULT '[]',
            deny_list TEXT NOT NULL DEFAULT '[]',
            tenant_editable BOOLEAN NOT NULL DEFAULT 0,
            version INTEGER NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE feature_flag_tenants (
            name TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            enabled BOOLEAN NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (name, tenant_id))""",
    ),
    postgresql=(
        """CREATE TABLE feature_flags (
            name text PRIMARY KEY,
            description text NOT NULL DEFAULT '',
            enabled boolean NOT NULL,
            rollout double precision NOT NULL,
            subject text NOT NULL,
            allow_list text NOT NULL DEFAULT '[]',
            deny_list text NOT NULL DEFAULT '[]',
            tenant_editable boolean NOT NULL DEFAULT false,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL)""",
        """CREATE TABLE feature_flag_tenants (
            name text NOT NULL,
            tenant_id text NOT NULL,
            enabled boolean NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (name, tenant_id))""",
    ),
)

SCHEMA = Schema("flags", (_FLAGS,))
