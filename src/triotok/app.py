"""The composition root: builds the application supervision tree from settings.

::

    /app               root supervisor (one_for_one)
      /app/store       StoreOwner: the store, open for the life of the tree
      /app/transport   supervisor of the event plumbing:
        /app/transport/feed   OutboxFeed: every committed event to this node's caches
        /app/transport/bus    EventBus: subscriptions, retries, dead-letter queue
        /app/transport/relay  OutboxRelay: outbox rows to the bus, once per cluster
      /app/tenants     TenantResolver: LoadingCache + SingleFlight of tenants
      /app/access      KeyResolver: LoadingCache of API keys
      /app/http        HttpServer: hypercorn + the Quart app

Children start left to right and stop right to left, so on shutdown the
server stops first (in-flight requests finish), then the resolvers, the
event plumbing and finally the store.

Two ways events travel: the feed *broadcasts* every committed event to the
node-local caches (each node must invalidate its own tenant cache), while the
relay *claims* each outbox row on exactly one node (``FOR UPDATE SKIP
LOCKED``) and hands it to the bus, whose subscribers handle it once per
consumer group.

::

    async with open_application(load_settings(flags={"port": 0})) as app:
        print(app.port)
        await app.wait_stopped()
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from . import __version__
from ._exceptions import ConflictError
from .config import Settings
from .http import HttpOptions, HttpServer, Services
from .modules import OutboxFeed, StoreHandle, StoreOwner
from .modules.access import ApiKeyRepository, KeyDirectory, KeyResolver, Role, hash_key, parse_key
from .modules.tenants import TenantDirectory, TenantRepository, TenantResolver
from .store import OutboxRelay, OutboxTransport
from .supervision import ActorSystem, ChildSpec, SupervisorSpec, open_system
from .transport import EventBus, InMemoryTransport

__all__ = ("Application", "DemoKeys", "ensure_demo", "open_application")

logger = logging.getLogger("triotok.app")

REQUIRED = ("/app/store", "/app/transport", "/app/tenants", "/app/access", "/app/http")


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """The demo tenants' admin keys (plaintext, for the console only)."""

    operator_tenant: str
    operator_key: str
    demo_tenant: str
    demo_key: str


@dataclass(slots=True)
class Application:
    """The running tree and the handles the HTTP layer and tests use."""

    settings: Settings
    system: ActorSystem
    services: Services
    events: InMemoryTransport
    bus: EventBus
    demo: DemoKeys | None = None
    stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when configured as 0)."""
        port = self.services.extra.get("port")
        return int(port) if port is not None else self.settings.port

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"


def http_options(settings: Settings) -> HttpOptions:
    return HttpOptions(
        host=settings.host,
        port=settings.port,
        reuse_port=settings.workers > 1,
        graceful_timeout=settings.graceful_timeout,
        access_log=settings.access_log,
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_ip=settings.rate_limit_per_ip,
        rate_limit_per_key=settings.rate_limit_per_key,
        trust_proxy=settings.trust_proxy,
        trusted_proxy_hops=settings.trusted_proxy_hops,
        operator_tenant=settings.operator_tenant,
    )


@asynccontextmanager
async def open_application(
    settings: Settings, *, serve_http: bool = True
) -> AsyncIterator[Application]:
    """Start the tree (and the server unless ``serve_http`` is false); stop it on exit."""
    async with open_system(name="app") as system:
        handle = StoreHandle()
        events = InMemoryTransport()
        tenant_repository = TenantRepository(handle)
        key_repository = ApiKeyRepository(handle)
        tenants = TenantDirectory("tenants")
        keys = KeyDirectory("access")
        services = Services(
            options=http_options(settings),
            system=system,
            store=handle,
            tenants=tenants,
            tenant_repository=tenant_repository,
            keys=keys,
            key_repository=key_repository,
            required=REQUIRED if serve_http else REQUIRED[:-1],
            version=__version__,
        )
        await system.spawn(StoreOwner, handle, settings.store_url, name="store", shutdown=30.0)
        outbox = OutboxTransport(handle)
        bus = EventBus(transport=outbox)
        services.extra["bus"] = bus
        transport = SupervisorSpec(
            "transport",
            [
                ChildSpec("feed", OutboxFeed, (handle, events)),
                bus.child_spec("bus"),  # subscribes to the outbox before the relay starts
                ChildSpec("relay", OutboxRelay, (handle, outbox.deliver), shutdown=10.0),
            ],
        )
        await system.spawn_supervisor(transport)
        resolver = functools.partial(
            TenantResolver,
            ttl=settings.tenant_cache_ttl,
            negative_ttl=settings.tenant_negative_ttl,
        )
        await system.spawn(resolver, tenants, tenant_repository, events, name="tenants")
        await system.spawn(KeyResolver, keys, key_repository, events, name="access")
        app = Application(settings, system, services, events, bus)
        if settings.demo:
            app.demo = await ensure_demo(app, keys_file=demo_keys_path(settings))
        if serve_http:
            await system.spawn(
                HttpServer, services, name="http", shutdown=settings.graceful_timeout + 5.0
            )
        try:
            yield app
        finally:
            app.stopped.set()
            await bus.aclose()


# ------------------------------------------------------------------ demo data

DEMO_TENANT = "demo"


def demo_keys_path(settings: Settings) -> Path:
    """Next to the SQLite file, else ``triotok-data/demo-keys.json`` in the working directory."""
    url = settings.store_url
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :].partition("?")[0]).parent / "demo-keys.json"
    return Path("triotok-data") / "demo-keys.json"


async def ensure_demo(app: Application, *, keys_file: Path | None = None) -> DemoKeys:
    """Create the operator and demo tenants with an admin key each, once.

    The plaintext keys are kept in ``triotok-data/demo-keys.json`` (mode 0600)
    so a restart prints the same keys; a key missing from the store (a new
    database) is replaced.
    """
    services = app.services
    path = keys_file or Path("triotok-data") / "demo-keys.json"
    saved: dict[str, str] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            saved = {str(k): str(v) for k, v in loaded.items()}
        except (OSError, ValueError):
            saved = {}
    operator = app.settings.operator_tenant
    result: dict[str, str] = {}
    for tenant_id, name in ((operator, "Operators"), (DEMO_TENANT, "Demo")):
        if await services.tenant_repository.get(tenant_id) is None:
            # Another worker may create it meanwhile: that is as good.
            with contextlib.suppress(ConflictError):
                await services.tenant_repository.create(tenant_id, name, actor="system")
        result[tenant_id] = await _demo_key(services, tenant_id, saved.get(tenant_id))
    if result != saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        os.chmod(path, 0o600)
    return DemoKeys(operator, result[operator], DEMO_TENANT, result[DEMO_TENANT])


async def _demo_key(services: Services, tenant_id: str, saved: str | None) -> str:
    if saved is not None:
        key_id = parse_key(saved)
        if key_id is not None:
            stored = await services.key_repository.get(key_id)
            if (
                stored is not None
                and stored.tenant_id == tenant_id
                and stored.revoked_at is None
                and stored.key_hash == hash_key(saved)
            ):
                return saved
    _, plaintext = await services.key_repository.create(tenant_id, Role.ADMIN, actor="system")
    return plaintext


def demo_banner(app: Application) -> str:
    """What ``triotok serve --demo`` prints: the keys and commands to try."""
    demo = app.demo
    url = app.url
    json_type = "Content-Type: application/json"
    lines = [f"TrioToK {__version__} is serving on {url} (store: {app.settings.store_url})"]
    if demo is not None:
        lines += [
            "",
            f"  operator admin key (tenant {demo.operator_tenant}): {demo.operator_key}",
            f"  demo admin key     (tenant {demo.demo_tenant}): {demo.demo_key}",
            "",
            "Try:",
            f"  export KEY={demo.demo_key} OPS={demo.operator_key}",
            f"  curl -s {url}/ready",
            f'  curl -s -H "Authorization: Bearer $KEY" {url}/api/tenants/current',
            f'  curl -s -X PATCH -H "Authorization: Bearer $KEY" -H "{json_type}"'
            f' -d \'{{"name": "Demo Inc."}}\' {url}/api/tenants/current',
            f'  curl -s -H "Authorization: Bearer $KEY" {url}/api/audit',
            f'  curl -s -X POST -H "Authorization: Bearer $OPS" -H "{json_type}"'
            f' -d \'{{"id": "acme", "name": "Acme"}}\' {url}/api/tenants',
            f'  curl -s -H "Authorization: Bearer $OPS" "{url}/system/tree?depth=1"',
            f"  curl -s {url}/openapi.json",
            "",
            "Operators:",
            f"  open {url}/system#key=$OPS            (the live supervision tree)",
            f"  TRIOTOK_API_KEY=$OPS triotok tree --url {url} --watch",
        ]
    return "\n".join(lines)


def describe(app: Application) -> dict[str, Any]:
    """A one-line summary for logs."""
    return {"url": app.url, "store": app.settings.store_url, "pid": os.getpid()}
