"""A harness for testing a plugin: the real platform around it, and direct calls into it.

:func:`open_plugin_harness` starts an application (a SQLite file in a
temporary directory unless ``store_url`` is given; no HTTP server) with the
plugin, enables it with its requested capabilities (or ``grants``) and
switches it on for ``tenant``. Then a test calls it the way the platform
does, through its breaker, deadline, capability gate and (for
``isolation = "process"``) its child process:

::

    async with open_plugin_harness(Hello) as harness:
        await harness.deliver(NodeCreated(...))            # to its matching subscriptions
        reply = await harness.request("GET", "/greeting")  # its endpoint
        assert reply.body == {"hello": "acme"}
        assert await harness.stored("last") is not None    # its storage, for the tenant
        assert [e.event_type for e in await harness.published()] == ["hello.greeted"]

Errors of the plugin reach the test as they are (``CapabilityDenied``,
``PluginTimeout``, ``PluginCrashed``...), not as dead letters.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..app import Application, open_application
from ..config import load_settings
from ..modules import Module
from ..plugins import (
    Capabilities,
    Plugin,
    PluginManager,
    PluginOptions,
    PluginRequest,
    PluginResponse,
    PluginStatus,
)
from ..transport import Envelope, decode

__all__ = ("PluginHarness", "open_plugin_harness")


def _matches(pattern: str, event_type: str) -> bool:
    from fnmatch import fnmatchcase

    return pattern == "*" or fnmatchcase(event_type, pattern)


@dataclass
class PluginHarness:
    """One enabled plugin on a real platform (see :func:`open_plugin_harness`)."""

    app: Application
    name: str
    tenant: str

    @property
    def manager(self) -> PluginManager:
        manager: PluginManager = self.app.services.plugins
        return manager

    @property
    def status(self) -> PluginStatus:
        return self.manager.status(self.name)

    async def deliver(self, event: Any, *, tenant: str | None = None) -> int:
        """Hand ``event`` (a payload or an Envelope) to each matching subscription; how many.

        Only the subscriptions its grant allows match, and only for a tenant
        that switched the plugin on; the plugin's error, if any, is raised here.
        """
        envelope = (
            event
            if isinstance(event, Envelope)
            else Envelope.new(event, tenant_id=tenant or self.tenant)
        )
        run = self.manager.run(self.name)
        tenant_id = envelope.tenant_id
        if tenant_id is None or not self.manager.switched_on(self.name, tenant_id):
            return 0  # as on the platform: only tenants that switched it on
        delivered = 0
        for index, pattern in run.plan:
            if _matches(pattern, envelope.event_type):
                await run.deliver(index, envelope)
                delivered += 1
        return delivered

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        role: str = "admin",
    ) -> PluginResponse:
        """Call the endpoint of ``method`` and ``path`` (relative: ``"/items/42"``)."""
        run = self.manager.run(self.name)
        for key, endpoint in run.endpoints.items():
            if endpoint.method != method:
                continue
            params = _match_path(endpoint.path, path)
            if params is None:
                continue
            converted_body = body
            if endpoint.body is not None and body is not None:
                converted_body = msgspec.convert(body, endpoint.body)
            converted_query = dict(query or {})
            if endpoint.query is not None:
                converted_query = msgspec.convert(converted_query, endpoint.query)
            request = PluginRequest(
                method=method,
                path=endpoint.path,
                params=params,
                query=converted_query,
                body=converted_body,
                tenant=tenant or self.tenant,
                principal="key:test",
                role=role,
                request_id="0" * 32,
            )
            return await run.request(key, request)
        raise LookupError(f"{self.name} has no endpoint {method} {path}")

    async def stored(self, key: str, *, tenant: str | None = None) -> Any:
        """The value at ``key`` in the plugin's storage namespace, for ``tenant``."""
        return await self.manager.stored(self.name, tenant or self.tenant, key)

    async def published(self) -> list[Envelope]:
        """The events the plugin published so far (from the outbox), oldest first."""
        rows = await self.app.context.store.store.fetch("SELECT payload FROM outbox ORDER BY id")
        actor = f"/app/plugins/{self.name}"
        envelopes = [decode(bytes(row["payload"])) for row in rows]
        return [e for e in envelopes if e.actor_id == actor]


def _match_path(template: str, path: str) -> dict[str, str] | None:
    pattern = re.sub(r"<([a-z][a-z0-9_]*)>", r"(?P<\1>[^/]+)", re.escape(template))
    match = re.fullmatch(pattern, path)
    return None if match is None else match.groupdict()


@asynccontextmanager
async def open_plugin_harness(
    plugin: type[Plugin],
    *,
    tenant: str = "acme",
    grants: Capabilities | None = None,
    store_url: str | None = None,
    options: PluginOptions | None = None,
    modules: tuple[Module, ...] | None = None,
) -> AsyncIterator[PluginHarness]:
    """Run ``plugin``, enabled and switched on for ``tenant``, for the block.

    ``options`` are the manager's (settings, limits, backoff); ``modules`` the
    application's (default: all of them).
    """
    with tempfile.TemporaryDirectory(prefix="triotok-plugin-") as tmp:
        url = store_url or f"sqlite:///{Path(tmp) / 'plugin.db'}"
        settings = load_settings(flags={"store_url": url, "port": 0})
        extra: dict[str, Any] = {} if modules is None else {"modules": modules}
        async with open_application(
            settings, serve_http=False, plugins=(plugin,), plugin_options=options, **extra
        ) as app:
            manager: PluginManager = app.services.plugins
            name = plugin.metadata.name
            status = await manager.enable(name, grants, who="test")
            if status.reason is not None:
                raise RuntimeError(f"{name} did not start: {status.reason}")
            await manager.switch(name, tenant, True, who="test")
            yield PluginHarness(app, name, tenant)
