"""The audit module's table."""

from __future__ import annotations

from ...store import SQLITE_NOW, Migration, Schema

__all__ = ("SCHEMA",)

_AUDIT_LOG = Migration(
    version=1,
    name="audit_log",
    legacy_version=1,
    sqlite=(
        f"""CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id TEXT,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            detail TEXT)""",
        "CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at)",
    ),
    postgresql=(
        """CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            tenant_id text,
            actor text NOT NULL,
            action text NOT NULL,
            resource text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            detail jsonb)""",
        "CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at)",
    ),
)

SCHEMA = Schema("audit", (_AUDIT_LOG,))
