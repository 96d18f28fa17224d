"""The live-server and store fixtures, for the search module's tests."""

from tests.http.conftest import (  # noqa: F401  # fixtures, used by name
    make_server,
    pg_cluster,
    pg_url,
    server,
    store_url,
)
from tests.store.conftest import store  # noqa: F401  # a migrated store on store_url
