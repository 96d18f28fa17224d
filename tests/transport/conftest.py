"""Transport fixtures: the store fixtures, for the L2 tests that need a database."""

from tests.store.conftest import pg_cluster, pg_url, store_url  # noqa: F401  # fixtures
