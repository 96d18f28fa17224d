"""Versioned schema migrations, per module, the same logical schema on both backends.

Invariants:

* Every module (the store itself, each domain module, each plugin) owns a
  :class:`Schema`: its name and an append-only, contiguous tuple of
  :class:`Migration` numbered from 1. A released migration is never edited
  or renumbered; a change is a new migration.
* The database records what it applied as ``(module, version)`` rows in
  ``module_migrations``, so modules and plugins evolve independently.
* Backends apply the plan inside one transaction holding the migration lock
  (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
  concurrent starts apply each migration exactly once.
* A database that a module's newer code migrated further is refused
  (:class:`SchemaTooNew`); modules the code does not know (a removed plugin)
  are left alone.
* Databases from before per-module bookkeeping kept one global version in
  ``schema_migrations``. A migration that was released as global version
  ``N`` says so (``legacy_version=N``); on the first start with this code
  those are recorded as applied without running, so such a database upgrades
  in place. A sentinel row then makes older code refuse the database instead
  of writing to a schema it does not know.

Dialect mapping: PostgreSQL ``timestamptz``/``boolean``/``jsonb``/``bytea``
are SQLite ``TIMESTAMPTZ`` (UTC ISO-8601 text, see ``_sql``), ``BOOLEAN``
(0/1), ``TEXT`` and ``BLOB``. JSON columns hold text on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .._exceptions import InvalidConfig, SchemaTooNew

__all__ = (
    "LATEST_VERSION",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "SQLITE_NOW",
    "STORE_SCHEMA",
    "Migration",
    "MigrationStep",
    "Schema",
    "pending",
    "plan",
)

# pg_advisory_xact_lock key serialising migrations: b"triotok" as an integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"triotok", "big")

# Written to the legacy ``schema_migrations`` table once per-module bookkeeping
# took over: code from before it reads a version it does not know and refuses.
LEGACY_SENTINEL_VERSION = 1_000_000
LEGACY_SENTINEL_NAME = "superseded by module_migrations (per-module versions)"

_MODULE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Migration:
    """One numbered schema step with its statements for each dialect."""

    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    #: The global schema version this step was released as, before per-module
    #: bookkeeping (``None`` for every step written since).
    legacy_version: int | None = None


@dataclass(frozen=True)
class Schema:
    """A module's migrations: ``module`` names the owner in ``module_migrations``."""

    module: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        if not _MODULE_NAME.fullmatch(self.module):
            raise InvalidConfig("module", f"{self.module!r} is not a valid module name")
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise InvalidConfig(
                "migrations", f"{self.module}: versions must run 1, 2, 3, ... (got {versions})"
            )
        for migration in self.migrations:
            if len(migration.sqlite) != len(migration.postgresql) or not migration.sqlite:
                raise InvalidConfig(
                    "migrations",
                    f"{self.module} v{migration.version}: give the same statements for both"
                    " dialects",
                )

    @property
    def latest(self) -> int:
        return self.migrations[-1].version if self.migrations else 0


@dataclass(frozen=True)
class MigrationStep:
    """One entry of a plan: run ``migration`` of ``module``, or only record it (``adopt``)."""

    module: str
    migration: Migration
    adopt: bool = False


CREATE_LEGACY_TABLE = {
    "sqlite": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL)""",
    "postgresql": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
}

CREATE_MIGRATIONS_TABLE = {
    "sqlite": """CREATE TABLE IF NOT EXISTS module_migrations (
        module TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (module, version))""",
    "postgresql": """CREATE TABLE IF NOT EXISTS module_migrations (
        module text NOT NULL,
        version integer NOT NULL,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (module, version))""",
}

# SQLite has no now(); this default has millisecond precision, which still
# sorts correctly against the microsecond text TrioToK writes itself.
SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"

_OUTBOX = Migration(
    version=1,
    name="outbox, inbox",
    legacy_version=1,
    sqlite=(
        f"""CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            tenant_id TEXT,
            payload BLOB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            available_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
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
            processed_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW},
            PRIMARY KEY (consumer, event_id))""",
        "CREATE INDEX inbox_processed ON inbox (processed_at)",
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
    ),
)

# Events the relay gave up on (undecodable, a permanent sink error or too many
# attempts), moved out of the outbox in the same transaction that deletes the
# outbox row, so an event is always in exactly one of the two tables.
_DEAD_LETTERS = Migration(
    version=2,
    name="event_dead_letters",
    legacy_version=2,
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
            dead_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW})""",
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
            dead_at TIMESTAMPTZ NOT NULL DEFAULT {SQLITE_NOW})""",
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

#: The store's own tables: outbox, inbox, dead letters. Append only.
MIGRATIONS: tuple[Migration, ...] = (_OUTBOX, _DEAD_LETTERS, _DEAD_LETTER_SOURCES)

#: The platform tables the store owns, applied before every module's.
STORE_SCHEMA = Schema("store", MIGRATIONS)

LATEST_VERSION = STORE_SCHEMA.latest


def schemas_with_store(schemas: Iterable[Schema]) -> tuple[Schema, ...]:
    """``STORE_SCHEMA`` first, then ``schemas`` in order; refuse a module named twice."""
    result = [STORE_SCHEMA]
    seen = {STORE_SCHEMA.module}
    for schema in schemas:
        if schema.module in seen:
            raise InvalidConfig("schemas", f"module {schema.module!r} is given twice")
        seen.add(schema.module)
        result.append(schema)
    return tuple(result)


def pending(current: int, url: str, schema: Schema = STORE_SCHEMA) -> list[Migration]:
    """The migrations of ``schema`` to apply over ``current``; refuse a newer database."""
    if current > schema.latest:
        raise SchemaTooNew(
            f"{url}: module {schema.module!r} of the database is at version {current} but this"
            f" code knows up to version {schema.latest}; refusing to start (run a newer TrioToK)"
        )
    return [m for m in schema.migrations if m.version > current]


def plan(
    applied: Mapping[str, int],
    legacy: int | None,
    schemas: Sequence[Schema],
    url: str,
) -> list[MigrationStep]:
    """What to do at start, given each module's applied version and the legacy version.

    ``legacy`` is the global version found in ``schema_migrations`` on a
    database that predates per-module bookkeeping (``None`` otherwise, or once
    adopted). Pure: the backends run the plan in their migration transaction.
    """
    if legacy is not None and legacy >= LEGACY_SENTINEL_VERSION:
        legacy = None  # already adopted
    steps: list[MigrationStep] = []
    for schema in schemas:
        current = applied.get(schema.module, 0)
        for migration in pending(current, url, schema):
            adopt = (
                legacy is not None
                and current == 0
                and migration.legacy_version is not None
                and migration.legacy_version <= legacy
            )
            steps.append(MigrationStep(schema.module, migration, adopt=adopt))
    return steps
