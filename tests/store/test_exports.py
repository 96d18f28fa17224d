"""Pin the public names of ``triotok.store``."""

from __future__ import annotations

import triotok.store


def test_public_names() -> None:
    assert set(triotok.store.__all__) == {
        "DEFAULT_STORE_URL",
        "LATEST_VERSION",
        "MIGRATIONS",
        "SQLITE_NOW",
        "STORE_SCHEMA",
        "OutboxFeed",
        "Schema",
        "StoreHandle",
        "StoreOwner",
        "OUTBOX_CHANNEL",
        "Backend",
        "ConflictError",
        "DeadLetteredEvent",
        "DurableDeadLetterLog",
        "EventDeadLetters",
        "GetPosition",
        "GetStatistics",
        "InboxConsumer",
        "InboxHandler",
        "InboxStatistics",
        "Migration",
        "NotFound",
        "OutboxRelay",
        "OutboxRow",
        "OutboxTransport",
        "OutboxTransportStatistics",
        "Ping",
        "PostgresCluster",
        "PostgresConfig",
        "PostgresNotInstalled",
        "RelayStatistics",
        "RetryDecision",
        "OutboxRetry",
        "Row",
        "SchemaTooNew",
        "SqliteConfig",
        "Store",
        "StoreError",
        "StoreLike",
        "StoreSource",
        "StoreStatistics",
        "StoreUnavailable",
        "UnitOfWork",
        "Wake",
        "Wakeups",
        "default_node_id",
        "idempotent",
        "open_store",
        "parse_store_url",
    }
    for name in triotok.store.__all__:
        assert getattr(triotok.store, name) is not None
