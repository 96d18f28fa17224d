"""A real TrioToK server on 127.0.0.1 (free port), on SQLite and on PostgreSQL.

``server`` starts the whole application tree (store, feed, resolvers,
hypercorn) in the test's trio loop, so a test can both talk HTTP to it and
look inside (repositories' query counters, the actor system). Limits are
high by default; tests of the limits start their own server with
``make_server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.store.conftest import pg_cluster, pg_url  # noqa: F401  # fixtures used by store_url
from triotok.app import MODULES, PLUGINS, Application, open_application
from triotok.config import Settings, load_settings
from triotok.modules.access import ApiKeyRepository, Role
from triotok.modules.modes import Sample
from triotok.modules.tenants import TenantRepository


@dataclass
class Server:
    """A running application plus helpers to create tenants and keys directly."""

    app: Application
    client: httpx.AsyncClient
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.app.url

    @property
    def services(self) -> Any:
        return self.app.services

    async def tenant(self, tenant_id: str, name: str | None = None) -> str:
        repo = self.services.context.get(TenantRepository)
        if await repo.get(tenant_id) is None:
            await repo.create(tenant_id, name or tenant_id.title(), actor="test")
        return tenant_id

    async def key(self, tenant_id: str, role: str = "admin") -> str:
        """A (cached per test) key of ``role`` for ``tenant_id``, creating the tenant."""
        if (tenant_id, role) not in self.keys:
            await self.tenant(tenant_id)
            _, plaintext = await self.services.context.get(ApiKeyRepository).create(
                tenant_id, Role(role), actor="test"
            )
            self.keys[tenant_id, role] = plaintext
        return self.keys[tenant_id, role]

    async def operator(self) -> str:
        return await self.key(self.app.settings.operator_tenant, "admin")

    async def wait_mode(self, mode: str, *, poll: float = 0.05) -> None:
        """Sample the signals until the node is in ``mode``.

        Polls: the store's breakers wait real seconds before their trial call,
        and the probes are real I/O, so no in-process event says "recovered".
        """
        monitor: Any = self.app.system.ref("/app/mode")
        while (await monitor.ask(Sample())).mode.value != mode:  # noqa: ASYNC110  # see above
            await trio.sleep(poll)

    @staticmethod
    def auth(key: str, tenant: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"}
        if tenant is not None:
            headers["X-Tenant"] = tenant
        return headers


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/triotok.db"
    url: str = request.getfixturevalue("pg_url")
    return url


ServerFactory = Callable[..., AbstractAsyncContextManager[Server]]


@pytest.fixture
def make_server(store_url: str) -> ServerFactory:
    """``async with make_server(rate_limit_per_ip=5) as server: ...``

    ``modules=`` composes another tuple of modules than the application's;
    ``plugins=`` and ``plugin_options=`` go to ``open_application`` as they are.
    """

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Server]:
        values: dict[str, Any] = {
            "port": 0,
            "store_url": store_url,
            "rate_limit_per_ip": 100_000,
            "rate_limit_per_key": 100_000,
            "graceful_timeout": 2.0,
        }
        modules = overrides.pop("modules", MODULES)
        plugins = overrides.pop("plugins", PLUGINS)
        plugin_options = overrides.pop("plugin_options", None)
        values.update(overrides)
        settings: Settings = load_settings(flags=values)
        async with (
            open_application(
                settings, modules=modules, plugins=plugins, plugin_options=plugin_options
            ) as app,
            httpx.AsyncClient(base_url=app.url, timeout=10.0) as client,
        ):
            yield Server(app, client)

    return start


@pytest.fixture
async def server(make_server: ServerFactory) -> AsyncIterator[Server]:
    async with make_server() as running:
        yield running
