"""The modes module's tables: the operator's override (one row) and every node's mode."""

from __future__ import annotations

from ...store import SQLITE_NOW, Migration, Schema

__all__ = ("SCHEMA",)

_MODES = Migration(
    version=1,
    name="service modes",
    sqlite=(
        """CREATE TABLE service_mode_override (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            mode TEXT NOT NULL,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            expires_at TIMESTAMPTZ,
            set_at TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE service_nodes (
            node_id TEXT PRIMARY KEY,
            mode TEXT NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW})""",
    ),
    postgresql=(
        """CREATE TABLE service_mode_override (
            id integer PRIMARY KEY CHECK (id = 1),
            mode text NOT NULL,
            reason text NOT NULL,
            actor text NOT NULL,
            expires_at timestamptz,
            set_at timestamptz NOT NULL)""",
        """CREATE TABLE service_nodes (
            node_id text PRIMARY KEY,
            mode text NOT NULL,
            reasons text NOT NULL DEFAULT '[]',
            heartbeat_at timestamptz NOT NULL DEFAULT now())""",
    ),
)

SCHEMA = Schema("modes", (_MODES,))
