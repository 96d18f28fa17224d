"""Store fixtures: a real SQLite file and a real PostgreSQL cluster.

Reusable from other test folders::

    from tests.store.conftest import pg_cluster, pg_url, store, store_url  # noqa: F401

``pg_cluster`` starts one throwaway cluster per test session
(``triotok.testing.PostgresCluster``); ``pg_url`` creates a fresh database per
test. Without PostgreSQL binaries the ``postgres`` tests skip loudly, or fail
when ``TRIOTOK_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from triotok.app import schemas_of
from triotok.store import Store, open_store
from triotok.testing import PostgresCluster

#: The application's module schemas: store tests use its tables as sample data.
SCHEMAS = schemas_of()

_REQUIRE = os.environ.get("TRIOTOK_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole session, deleted at the end."""
    if PostgresCluster.find_bindir() is None:
        reason = (
            "POSTGRESQL NOT INSTALLED: no initdb/pg_ctl/postgres found ($TRIOTOK_PG_BINDIR, PATH, "
            "pg_config, /usr/lib/postgresql/*/bin) -- PostgreSQL store tests DID NOT RUN; "
            "set TRIOTOK_REQUIRE_POSTGRES=1 to make this an error"
        )
        if _REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup(wait=False)


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> str:
    """A fresh, empty database on the session cluster."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same test against a SQLite file and a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/triotok.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open, migrated store on a fresh database."""
    async with open_store(store_url, schemas=SCHEMAS) as opened:
        yield opened
