"""The live-server fixtures of tests/http, for plugin tests that talk HTTP."""

from tests.http.conftest import (  # noqa: F401  # fixtures, used by name
    make_server,
    pg_cluster,
    pg_url,
    server,
    store_url,
)
