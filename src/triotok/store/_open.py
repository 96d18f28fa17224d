"""``open_store(url)``: the one entry point that picks a backend from a URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ._config import DEFAULT_STORE_URL, SqliteConfig, parse_store_url
from ._migrations import Schema
from ._sqlite import open_sqlite_store
from ._types import Store

__all__ = ("open_store",)


@asynccontextmanager
async def open_store(
    url: str | None = None, *, schemas: Sequence[Schema] = (), **options: Any
) -> AsyncIterator[Store]:
    """Open the store at ``url``, applying pending migrations, for the block's duration.

    ``url`` defaults to :data:`DEFAULT_STORE_URL` (``sqlite:///triotok-data/triotok.db``).
    ``schemas`` are the modules' migrations, applied in order after the
    store's own tables (see :class:`Schema`). Keyword ``options`` override
    URL query parameters (SQLite: ``busy_timeout``, ``checkpoint_every``;
    PostgreSQL: ``pool_size``, ``pool_min_size``, ``statement_timeout``,
    ``connect_timeout``). Raises ``InvalidConfig`` for a malformed URL,
    ``StoreUnavailable`` if the database cannot be reached and
    ``SchemaTooNew`` if newer code migrated it.

    Example::

        async with open_store("postgresql://app@db:5432/triotok?pool_size=20") as store:
            async with store.transaction() as tx:
                await tx.execute("UPDATE tenants SET active = $1 WHERE id = $2", False, "t1")
                await tx.publish(envelope)
    """
    config = parse_store_url(url if url is not None else DEFAULT_STORE_URL, **options)
    if isinstance(config, SqliteConfig):
        async with open_sqlite_store(config, schemas) as sqlite_store:
            yield sqlite_store
    else:
        # Imported here: asyncpg and trio-asyncio cost ~200 ms and several MB,
        # which an embedded (SQLite) node should not pay at start.
        from ._postgres import open_postgres_store

        async with open_postgres_store(config, schemas) as pg_store:
            yield pg_store
