"""The store: SQLite (embedded default) or PostgreSQL behind one ``Store`` seam.

Versioned migrations run at start; every write is a unit of work in which data
rows and outbox rows commit together; consumers deduplicate with the inbox.

::

    from triotok.store import open_store

    async with open_store("sqlite:///triotok-data/triotok.db") as store:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", "acme", "Acme")
            await tx.publish(envelope)          # same transaction as the insert
        for row in await store.claim_outbox("node-1", limit=100):
            ...                                 # deliver, then:
        await store.mark_delivered([row.id])

In an application the claiming is the :class:`OutboxRelay` actor's job, with
:class:`OutboxTransport` as the L1 transport and :class:`InboxConsumer` (or
``@idempotent``) making consumers effectively-once; see
``docs/howto/postgresql.md`` ("Scale out").
"""

from .._exceptions import ConflictError as ConflictError
from .._exceptions import NotFound as NotFound
from .._exceptions import SchemaTooNew as SchemaTooNew
from .._exceptions import StoreError as StoreError
from .._exceptions import StoreUnavailable as StoreUnavailable
from .._util import fixup_module_metadata
from ._config import DEFAULT_STORE_URL as DEFAULT_STORE_URL
from ._config import PostgresConfig as PostgresConfig
from ._config import SqliteConfig as SqliteConfig
from ._config import parse_store_url as parse_store_url
from ._deadletters import DeadLetteredEvent as DeadLetteredEvent
from ._deadletters import DurableDeadLetterLog as DurableDeadLetterLog
from ._deadletters import EventDeadLetters as EventDeadLetters
from ._guard import GuardedStore as GuardedStore
from ._guard import StoreBreakers as StoreBreakers
from ._inbox import InboxConsumer as InboxConsumer
from ._inbox import InboxHandler as InboxHandler
from ._inbox import InboxStatistics as InboxStatistics
from ._inbox import idempotent as idempotent
from ._migrations import LATEST_VERSION as LATEST_VERSION
from ._migrations import MIGRATIONS as MIGRATIONS
from ._migrations import SQLITE_NOW as SQLITE_NOW
from ._migrations import STORE_SCHEMA as STORE_SCHEMA
from ._migrations import Migration as Migration
from ._migrations import Schema as Schema
from ._open import open_store as open_store
from ._outbox import outbox_head as outbox_head
from ._outbox_transport import OutboxTransport as OutboxTransport
from ._outbox_transport import OutboxTransportStatistics as OutboxTransportStatistics
from ._owner import GetPosition as GetPosition
from ._owner import OutboxFeed as OutboxFeed
from ._owner import Ping as Ping
from ._owner import StoreHandle as StoreHandle
from ._owner import StoreOwner as StoreOwner
from ._relay import GetStatistics as GetStatistics
from ._relay import OutboxRelay as OutboxRelay
from ._relay import RelayStatistics as RelayStatistics
from ._relay import Wake as Wake
from ._relay import default_node_id as default_node_id
from ._retry import OutboxRetry as OutboxRetry
from ._retry import RetryDecision as RetryDecision
from ._source import StoreLike as StoreLike
from ._source import StoreSource as StoreSource
from ._sql import parse_timestamp as parse_timestamp
from ._sql import row_timestamp as row_timestamp
from ._types import OUTBOX_CHANNEL as OUTBOX_CHANNEL
from ._types import Backend as Backend
from ._types import OutboxRow as OutboxRow
from ._types import Row as Row
from ._types import Store as Store
from ._types import StoreStatistics as StoreStatistics
from ._types import UnitOfWork as UnitOfWork
from ._wakeups import Wakeups as Wakeups

__all__ = (
    "DEFAULT_STORE_URL",
    "LATEST_VERSION",
    "MIGRATIONS",
    "OUTBOX_CHANNEL",
    "SQLITE_NOW",
    "STORE_SCHEMA",
    "Backend",
    "ConflictError",
    "DeadLetteredEvent",
    "DurableDeadLetterLog",
    "EventDeadLetters",
    "GetPosition",
    "GetStatistics",
    "GuardedStore",
    "InboxConsumer",
    "InboxHandler",
    "InboxStatistics",
    "Migration",
    "NotFound",
    "OutboxFeed",
    "OutboxRelay",
    "OutboxRetry",
    "OutboxRow",
    "OutboxTransport",
    "OutboxTransportStatistics",
    "Ping",
    "PostgresConfig",
    "RelayStatistics",
    "RetryDecision",
    "Row",
    "Schema",
    "SchemaTooNew",
    "SqliteConfig",
    "Store",
    "StoreBreakers",
    "StoreError",
    "StoreHandle",
    "StoreLike",
    "StoreOwner",
    "StoreSource",
    "StoreStatistics",
    "StoreUnavailable",
    "UnitOfWork",
    "Wake",
    "Wakeups",
    "default_node_id",
    "idempotent",
    "open_store",
    "outbox_head",
    "parse_store_url",
    "parse_timestamp",
    "row_timestamp",
)

fixup_module_metadata(__name__, globals())
