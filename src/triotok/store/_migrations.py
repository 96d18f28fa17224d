"""Versioned schema migrations, the same logical schema on both backends.

Append-only: a released migration is never edited or renumbered; a change
is a new migration. Each one carries its statements per dialect. Backends
apply them at start inside one transaction holding the migration lock
(``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
concurrent starts apply each migration exactly once.

Dialect mapping: PostgreSQL ``timestamptz``/``boolean``/``jsonb``/``bytea``
are SQLite ``TIMESTAMPTZ`` (UTC ISO-8601 text, see ``_sql``), ``BOOLEAN``
(0/1), ``TEXT`` and ``BLOB``. JSON columns hold text on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import SchemaTooNew

__all__ = ("LATEST_VERSION", "MIGRATIONS", "MIGRATION_LOCK_KEY", "Migration", "pending")

# pg_advisory_xact_lock key serialising migrations: b"triotok" as an integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"triotok", "big")


@dataclass(frozen=True)
class Migration:
    """One numbered schema step with its statements for each dialect."""

    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


CREATE_MIGRATIONS_TABLE = {
    "sqlite": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL)""",
    "postgresql": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
}

# SQLite has no now(); this default has millisecond precision, which still
# sorts correctly against the microsecond text TrioToK writes itself.
_SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"

_INITIAL = Migration(
    version=1,
    name="outbox, inbox, tenants, api_keys, audit_log",
    sqlite=(
        f"""CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            tenant_id TEXT,
            payload BLOB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            available_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            attempts INTEGER NOT NULL DEFAULT 0,
            delivered_at TIMESTAMPTZ,
            claimed_by TEXT,
            claimed_until TIMESTAMPTZ,
            last_error TEXT)""",
        "CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL",
        "CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL",
        f"""CREATE TABLE inbox (
            consumer TEXT NOT NULL,
            event_id TEXT NOT NULL,
            processed_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            PRIMARY KEY (consumer, event_id))""",
        "CREATE INDEX inbox_processed ON inbox (processed_at)",
        f"""CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active BOOLEAN NOT NULL DEFAULT 1,
            settings TEXT NOT NULL DEFAULT '{{}}',
            created_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            updated_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            version INTEGER NOT NULL DEFAULT 1)""",
        f"""CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            revoked_at TIMESTAMPTZ)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id)",
        f"""CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id TEXT,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW},
            detail TEXT)""",
        "CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at)",
    ),
    postgresql=(
        """CREATE TABLE outbox (
            id bigserial PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            event_type text NOT NULL,
            tenant_id text,
            payload bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            available_at timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            delivered_at timestamptz,
            claimed_by text,
            claimed_until timestamptz,
            last_error text)""",
        "CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL",
        "CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL",
        """CREATE TABLE inbox (
            consumer text NOT NULL,
            event_id text NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id))""",
        "CREATE INDEX inbox_processed ON inbox (processed_at)",
        """CREATE TABLE tenants (
            id text PRIMARY KEY,
            name text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            settings jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            version integer NOT NULL DEFAULT 1)""",
        """CREATE TABLE api_keys (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            key_hash text NOT NULL UNIQUE,
            role text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id)",
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

# Events the relay gave up on (undecodable, a permanent sink error or too many
# attempts), moved out of the outbox in the same transaction that deletes the
# outbox row, so an event is always in exactly one of the two tables.
_DEAD_LETTERS = Migration(
    version=2,
    name="event_dead_letters",
    sqlite=(
        f"""CREATE TABLE event_dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            outbox_id INTEGER NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            tenant_id TEXT,
            payload BLOB NOT NULL,
            attempts INTEGER NOT NULL,
            reason TEXT NOT NULL,
            error TEXT,
            node_id TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            dead_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW})""",
        "CREATE INDEX event_dead_letters_dead_at ON event_dead_letters (dead_at)",
    ),
    postgresql=(
        """CREATE TABLE event_dead_letters (
            id bigserial PRIMARY KEY,
            outbox_id bigint NOT NULL,
            event_id text NOT NULL UNIQUE,
            event_type text NOT NULL,
            tenant_id text,
            payload bytea NOT NULL,
            attempts integer NOT NULL,
            reason text NOT NULL,
            error text,
            node_id text,
            created_at timestamptz NOT NULL,
            dead_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX event_dead_letters_dead_at ON event_dead_letters (dead_at)",
    ),
)

# The bus's dead letters may be kept in the same table (a durable bus DLQ):
# ``source`` says who gave up on the event ('outbox': the relay, 'bus': a
# subscriber), with the subscription a replay hands it back to. One event can
# fail in several subscriptions, so ``event_id`` is unique only among outbox
# rows (an event is in the outbox or here, never both), and ``outbox_id`` is
# empty for bus rows. SQLite cannot drop a constraint: it rebuilds the table,
# keeping ids and the AUTOINCREMENT high-water mark.
_DEAD_LETTER_SOURCES = Migration(
    version=3,
    name="event_dead_letters: source, subscription, error type",
    sqlite=(
        f"""CREATE TABLE event_dead_letters_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL DEFAULT 'outbox',
            outbox_id INTEGER,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            tenant_id TEXT,
            payload BLOB NOT NULL,
            attempts INTEGER NOT NULL,
            reason TEXT NOT NULL,
            error_type TEXT,
            error TEXT,
            pattern TEXT,
            subscription_group TEXT,
            subscriber TEXT,
            node_id TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            dead_at TIMESTAMPTZ NOT NULL DEFAULT {_SQLITE_NOW})""",
        """INSERT INTO event_dead_letters_v3 (id, outbox_id, event_id, event_type, tenant_id,
            payload, attempts, reason, error, node_id, created_at, dead_at)
            SELECT id, outbox_id, event_id, event_type, tenant_id, payload, attempts, reason,
            error, node_id, created_at, dead_at FROM event_dead_letters""",
        "DELETE FROM sqlite_sequence WHERE name = 'event_dead_letters_v3'",
        """INSERT INTO sqlite_sequence (name, seq)
            SELECT 'event_dead_letters_v3', seq FROM sqlite_sequence
            WHERE name = 'event_dead_letters'""",
        "DROP TABLE event_dead_letters",
        "ALTER TABLE event_dead_letters_v3 RENAME TO event_dead_letters",
        "CREATE INDEX event_dead_letters_dead_at ON event_dead_letters (dead_at)",
        "CREATE INDEX event_dead_letters_source ON event_dead_letters (source, id)",
        """CREATE UNIQUE INDEX event_dead_letters_outbox_event
            ON event_dead_letters (event_id) WHERE source = 'outbox'""",
    ),
    postgresql=(
        "ALTER TABLE event_dead_letters DROP CONSTRAINT event_dead_letters_event_id_key",
        "ALTER TABLE event_dead_letters ALTER COLUMN outbox_id DROP NOT NULL",
        "ALTER TABLE event_dead_letters ADD COLUMN source text NOT NULL DEFAULT 'outbox'",
        "ALTER TABLE event_dead_letters ADD COLUMN error_type text",
        "ALTER TABLE event_dead_letters ADD COLUMN pattern text",
        "ALTER TABLE event_dead_letters ADD COLUMN subscription_group text",
        "ALTER TABLE event_dead_letters ADD COLUMN subscriber text",
        "CREATE INDEX event_dead_letters_source ON event_dead_letters (source, id)",
        """CREATE UNIQUE INDEX event_dead_letters_outbox_event
            ON event_dead_letters (event_id) WHERE source = 'outbox'""",
    ),
)

#: Every migration, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (_INITIAL, _DEAD_LETTERS, _DEAD_LETTER_SOURCES)

LATEST_VERSION = MIGRATIONS[-1].version


def pending(
    current: int, url: str, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[Migration]:
    """The migrations to apply over ``current``; refuse a database newer than the code."""
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise SchemaTooNew(
            f"{url}: database schema is at version {current} but this code knows up to "
            f"version {latest}; refusing to start (run a newer TrioToK)"
        )
    return [m for m in migrations if m.version > current]
