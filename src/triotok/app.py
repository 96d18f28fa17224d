"""The composition root: builds the application supervision tree from a tuple of Modules.

::

    /app               root supervisor (one_for_one)
      /app/store       StoreOwner: the store (every module's migrations applied), behind
                       its read and write circuit breakers
      /app/mode        the modes module's monitor: the node's service mode, from its signals
      /app/tenants     the tenants module's resolver: LoadingCache + SingleFlight
      /app/access      the access module's key resolver: LoadingCache of API keys
      /app/modules     one supervisor per module with actors or subscriptions
      /app/transport   supervisor of the event plumbing:
        /app/transport/feed   OutboxFeed: every committed event to this node's caches
        /app/transport/stream StreamClient (L2 only, ``events_url``): NATS JetStream
        /app/transport/bus    EventBus: subscriptions, retries, dead-letter queue
        /app/transport/relay  OutboxRelay: outbox rows to the bus (L1) or the stream (L2),
                              once per cluster
      /app/http        HttpServer: hypercorn + the Quart app (every module's routes)

Adding a module touches only its own folder and one line of :data:`MODULES`.
Children start left to right and stop right to left: the modules' actors and
subscriptions exist before the relay delivers the first event, and on
shutdown the server stops first (in-flight requests finish), then the event
plumbing, the modules, and finally the store.

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
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from . import __version__
from ._exceptions import Conflict, ConflictError, InvalidConfig
from .actors import ActorRef
from .config import Settings
from .http import (
    IDEMPOTENCY,
    SYSTEM,
    HttpOptions,
    HttpServer,
    MetricsServer,
    Route,
    Services,
    StaleResponses,
    all_routes,
    plugin_routes,
)
from .modules import (
    HealthChecks,
    Module,
    ModuleContext,
    RoleTable,
    SubscriberActor,
    check_modules,
)
from .modules.access import ACCESS, ApiKeyRepository, KeyDirectory, Role, hash_key, parse_key
from .modules.audit import AUDIT
from .modules.commerce import (
    COMMERCE,
    AdjustInventory,
    CreateProduct,
    ProductService,
    UpdateProduct,
)
from .modules.commerce import Status as ProductStatus
from .modules.commerce import Who as ProductWho
from .modules.content import (
    CONTENT,
    Command,
    ContentService,
    CreateNode,
    TransitionNode,
    Translation,
    Who,
)
from .modules.flags import FLAGS
from .modules.modes import MODES
from .modules.orders import ORDERS
from .modules.search import SEARCH
from .modules.tenants import TENANTS, TenantDirectory, TenantRepository
from .plugins import Plugin, PluginManager, PluginOptions, PluginState, discover
from .plugins.seo import SEO
from .plugins.webhooks import WEBHOOKS
from .store import (
    DurableDeadLetterLog,
    EventDeadLetters,
    OutboxFeed,
    OutboxRelay,
    OutboxTransport,
    Schema,
    StoreHandle,
    StoreOwner,
)
from .supervision import ActorSystem, ChildSpec, SupervisorSpec, open_system
from .telemetry import Telemetry, TelemetryOptions
from .transport import EventBus, InMemoryTransport, JetStreamTransport

__all__ = (
    "MODULES",
    "PLUGINS",
    "Application",
    "DemoKeys",
    "ensure_demo",
    "open_application",
    "role_table",
    "route_table",
    "schemas_of",
    "telemetry_options",
)

logger = logging.getLogger("triotok.app")

#: The composition: every module of the application, in start order.
#: ``MODES`` comes last: its monitor's first sample runs every other module's checks.
MODULES: tuple[Module, ...] = (
    SYSTEM,
    TENANTS,
    ACCESS,
    AUDIT,
    FLAGS,
    IDEMPOTENCY,
    CONTENT,
    COMMERCE,
    ORDERS,
    SEARCH,
    MODES,
)

#: The first-party plugins, discovered with those of installed packages (each
#: stays ``discovered`` until an operator enables it).
PLUGINS: tuple[type[Plugin], ...] = (WEBHOOKS, SEO)

#: The platform's own actors that must run for ``/ready`` (modules add theirs).
PLATFORM_REQUIRED = ("/app/store", "/app/transport")


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
    #: The L2 event stream when ``events_url`` is set (``/app/transport/stream``), else None.
    stream: JetStreamTransport | None = None

    @property
    def context(self) -> ModuleContext:
        return self.services.context

    @property
    def modules(self) -> tuple[Module, ...]:
        return self.services.modules

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when configured as 0)."""
        port = self.services.port
        return port if port is not None else self.settings.port

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
        max_connections=settings.max_connections,
        keep_alive_timeout=settings.keep_alive_timeout,
        body_timeout=settings.body_timeout,
    )


def telemetry_options(settings: Settings) -> TelemetryOptions:
    """Traces and metrics as ``settings`` configure them (the node id as the instance)."""
    from .store import default_node_id

    return TelemetryOptions(
        tracing=settings.tracing,  # type: ignore[arg-type]  # validated by load_settings
        otlp_endpoint=settings.otlp_endpoint,
        sample_ratio=settings.trace_sample_ratio,
        service_name=settings.service_name,
        service_version=__version__,
        instance_id=default_node_id(),
        metrics=settings.metrics,
    )


def module_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each built-in module's own settings, from the application's."""
    return {
        "tenants": {
            "cache_ttl": settings.tenant_cache_ttl,
            "negative_ttl": settings.tenant_negative_ttl,
        },
        "search": {
            "consistency_wait": settings.search_consistency_wait,
            "max_lag_seconds": settings.search_max_lag,
            "text_configs": settings.search_text_configs,
            "page_cache_ttl": settings.search_page_cache_ttl,
            # L2: "delivered" is "in the stream"; see modules/search/_consistency.py.
            "stream_window": min(settings.search_max_lag, 3600.0) if settings.events_url else 0.0,
        },
        "modes": {"store_down": settings.store_down_mode},
        "orders": _payment_settings(settings),
        "idempotency": {"lease": settings.idempotency_lease},
    }


def _payment_settings(settings: Settings) -> dict[str, Any]:
    """``[payments]`` as the orders module reads it (nothing for the default, manual)."""
    if settings.payments_provider == "manual" and not settings.payments_url:
        return {}  # the orders module's own default; a timeout means nothing to it
    route: dict[str, Any] = {
        "provider": settings.payments_provider,
        "timeout": settings.payments_timeout,
    }
    if settings.payments_url:
        route["url"] = settings.payments_url
    return {"payments": route}


def schemas_of(modules: Sequence[Module] = MODULES) -> tuple[Schema, ...]:
    """The migrations of ``modules``, in order (what ``/app/store`` applies at start)."""
    return tuple(module.schema for module in modules if module.migrations)


def route_table(
    modules: Sequence[Module] = MODULES, plugins: Sequence[type[Plugin]] = PLUGINS
) -> tuple[Route, ...]:
    """Every route of an application of ``modules`` with the first-party ``plugins``."""
    manager = PluginManager(discover(plugins, group=None))
    return (*all_routes(modules), *plugin_routes(manager))


def role_table(
    modules: Sequence[Module] = MODULES, plugins: Sequence[type[Plugin]] = PLUGINS
) -> RoleTable:
    """The role table of such an application: the modules' grants and the plugins'."""
    manager = PluginManager(discover(plugins, group=None))
    return RoleTable(
        [*(grant for module in modules for grant in module.permissions), *manager.permissions()]
    )


def required_paths(modules: Sequence[Module], *, serve_http: bool) -> tuple[str, ...]:
    """The actors ``/ready`` needs running: the platform's and each module's declared subtree."""
    paths = [*PLATFORM_REQUIRED]
    paths += [m.actor_path for m in modules if m.actors is not None or m.subscriptions]
    if serve_http:
        paths.append("/app/http")
    return tuple(paths)


def _module_spec(module: Module, ctx: ModuleContext) -> SupervisorSpec:
    children = list(module.actors(ctx)) if module.actors is not None else []
    for index, subscription in enumerate(module.subscriptions, 1):
        handler = subscription.handler(ctx)
        children.append(ChildSpec(f"on-{index}", SubscriberActor, (handler,)))
    return SupervisorSpec(module.name, children)


async def _start_modules(
    system: ActorSystem, modules: Sequence[Module], contexts: Mapping[str, ModuleContext]
) -> None:
    nested: list[SupervisorSpec] = []
    for module in modules:
        ctx = contexts[module.name]
        if module.path is not None:
            if module.subscriptions:
                raise InvalidConfig(
                    "subscriptions",
                    f"{module.name}: a module mounted at /app/{module.path}"
                    " has one actor; declare subscriptions in a module under /app/modules",
                )
            specs = list(module.actors(ctx)) if module.actors is not None else []
            if len(specs) != 1:
                raise InvalidConfig(
                    "actors", f"{module.name}: a module at /app/{module.path} has exactly one actor"
                )
            await system.root.start_child(replace(specs[0], id=module.path))
        elif module.actors is not None or module.subscriptions:
            nested.append(_module_spec(module, ctx))
    if nested:
        await system.spawn_supervisor(SupervisorSpec("modules", nested))
    for module in modules:
        group_default = module.name
        for index, subscription in enumerate(module.subscriptions, 1):
            ref = system.ref(f"{module.actor_path}/on-{index}")
            assert isinstance(ref, ActorRef)  # a ModuleSubscriber, spawned above
            await contexts[module.name].bus.subscribe(
                subscription.pattern, ref, group=subscription.group or group_default
            )


@asynccontextmanager
async def open_application(
    settings: Settings,
    *,
    serve_http: bool = True,
    modules: Sequence[Module] = MODULES,
    settings_of: Mapping[str, Mapping[str, Any]] | None = None,
    telemetry: Telemetry | None = None,
    plugins: Sequence[type[Plugin]] = PLUGINS,
    plugin_options: PluginOptions | None = None,
) -> AsyncIterator[Application]:
    """Start the tree of ``modules`` (and the server unless ``serve_http`` is false).

    ``settings_of`` gives modules their own settings by module name (merged
    over what :func:`module_settings` derives from ``settings``).
    ``telemetry`` (default: one built from ``settings``, see
    :func:`telemetry_options`) is installed before anything is spawned and
    flushed when the application stops. ``plugins`` are the first-party
    plugins; those of installed packages (entry points) and of
    ``settings.plugins_dir`` are discovered besides them.
    """
    modules = tuple(modules)
    check_modules(modules)
    manager = PluginManager(
        discover(plugins, directory=settings.plugins_dir or None), plugin_options
    )
    if telemetry is None:
        telemetry = Telemetry(telemetry_options(settings))
    try:
        async with open_system(name="app") as system:
            telemetry.install(system)
            handle = StoreHandle(wrap=telemetry.instrument_store if telemetry.enabled else None)
            events = InMemoryTransport()
            outbox = OutboxTransport(handle)
            stream = event_stream(settings, outbox)
            durable = DurableDeadLetterLog(handle) if settings.durable_bus_dead_letters else None
            bus = EventBus(transport=stream or outbox, dead_letters=durable)
            bus.delivery_hook = telemetry.bus_hook()
            roles = RoleTable(
                [
                    *(grant for module in modules for grant in module.permissions),
                    *manager.permissions(),
                ]
            )
            tenants = TenantDirectory("tenants")
            tenants.timer = telemetry.tenant_timer()
            base = ModuleContext(
                "platform",
                system,
                handle,
                bus,
                events,
                tenants,
                KeyDirectory("access"),
                roles,
                operator_tenant=settings.operator_tenant,
            )
            base.provide(HealthChecks(modules))
            own = module_settings(settings)
            for name, values in (settings_of or {}).items():
                own[name] = {**own.get(name, {}), **values}
            contexts = {m.name: base.for_module(m.name, own.get(m.name, {})) for m in modules}
            services = Services(
                options=http_options(settings),
                stale=StaleResponses(max_age=settings.stale_max_age),
                context=base,
                modules=modules,
                required=required_paths(modules, serve_http=serve_http),
                version=__version__,
                event_dead_letters={"bus": bus.dead_letters, "outbox": EventDeadLetters(handle)},
                telemetry=telemetry,
                plugins=manager,
            )
            await system.spawn(
                StoreOwner,
                handle,
                settings.store_url,
                (*schemas_of(modules), *manager.schemas()),
                True,  # guard: behind the read and write breakers
                name="store",
                shutdown=30.0,
            )
            for module in modules:
                if module.setup is not None:
                    module.setup(contexts[module.name])
            await _start_modules(system, modules, contexts)
            plumbing = _transport_children(
                handle, events, outbox, bus, stream, telemetry, relay=settings.relay
            )
            await system.spawn_supervisor(SupervisorSpec("transport", plumbing))
            await manager.start(base)  # /app/plugins: a plugin that fails is only marked failed
            app = Application(settings, system, services, events, bus, stream=stream)
            if telemetry.metrics is not None:
                _scrape_refreshers(app, telemetry)
                if settings.metrics_port:
                    await system.spawn(
                        MetricsServer,
                        telemetry.metrics,
                        settings.metrics_host,
                        settings.metrics_port,
                        name="metrics",
                    )
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
                await manager.aclose()
                await bus.aclose()
    finally:
        # After the whole tree stopped: the spans of its last requests and messages are in.
        await telemetry.aclose()


# ------------------------------------------------------------------ the event transport


def event_stream(settings: Settings, outbox: OutboxTransport) -> JetStreamTransport | None:
    """L2 when ``events_url`` is set: the bus consumes the stream, the relay feeds it."""
    if not settings.events_url:
        return None
    from .config import jetstream_config

    return JetStreamTransport(jetstream_config(settings), publisher=outbox.publish)


def _transport_children(
    handle: StoreHandle,
    events: InMemoryTransport,
    outbox: OutboxTransport,
    bus: EventBus,
    stream: JetStreamTransport | None,
    telemetry: Telemetry,
    *,
    relay: bool,
) -> list[ChildSpec]:
    """``/app/transport``: feed, [stream,] bus, [relay] (to the bus on L1, the stream on L2)."""
    children = [ChildSpec("feed", OutboxFeed, (handle, events))]
    if stream is not None:
        children.append(stream.child_spec("stream"))  # connects before the bus attaches groups
    children.append(bus.child_spec("bus"))  # subscribes before the relay starts
    if relay:
        sink = telemetry.wrap_sink(outbox.deliver if stream is None else stream.forward)
        children.append(ChildSpec("relay", OutboxRelay, (handle, sink), shutdown=10.0))
    return children


# ------------------------------------------------------------------ metrics read per scrape


def _scrape_refreshers(app: Application, telemetry: Telemetry) -> None:
    """The series that need a query or a check: measured just before each scrape."""
    metrics = telemetry.metrics
    assert metrics is not None
    services = app.services

    async def outbox() -> list[Any]:
        store = services.store.store
        backlog = await store.fetchval("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
        family = metrics.gauge("outbox_lag_events", "Outbox rows not delivered yet")
        family.add_metric([], float(backlog or 0))
        return [family]

    async def dead_letters() -> list[Any]:
        family = metrics.gauge(
            "dead_letters",
            "Dead letters by source: bus and outbox entries kept now, actors posted since start",
            labels=["source"],
        )
        for source, store in services.event_dead_letters.items():
            family.add_metric([source], (await store.statistics()).size)
        family.add_metric(["actors"], app.system.dead_letters.statistics().total)
        return [family]

    async def health() -> list[Any]:
        ok, checks = await _readiness(app)
        modules = metrics.gauge(
            "module_health", "1 for each check's current status", labels=["module", "status"]
        )
        for name, status in checks.items():
            for candidate in ("up", "degraded", "down"):
                modules.add_metric([name, candidate], 1.0 if status == candidate else 0.0)
        ready = metrics.gauge("triotok_ready", "1 while /ready would answer 200")
        ready.add_metric([], 1.0 if ok else 0.0)
        info = metrics.gauge("triotok_build_info", "The running version", labels=["version"])
        info.add_metric([__version__], 1.0)
        return [modules, ready, info]

    metrics.add_refresher("outbox", outbox)
    metrics.add_refresher("dead_letters", dead_letters)
    metrics.add_refresher("health", health)


async def _readiness(app: Application) -> tuple[bool, dict[str, str]]:
    """What ``/ready`` checks, as ``(ready, {check: up|degraded|down})``."""
    services = app.services
    ok = app.system.root.state.value == "running"
    for path in services.required:
        try:
            state = app.system.tree(prefix=path, depth=0)["state"]
        except LookupError:
            state = "missing"
        ok = ok and state == "running"
    statuses: dict[str, str] = {}
    try:
        with trio.fail_after(1.0):
            await services.store.store.ping()
        statuses["store"] = "up"
    except Exception:  # StoreUnavailable, TooSlowError: not ready either way
        statuses["store"] = "down"
        ok = False
    reported = {"ok": "up", "degraded": "degraded", "down": "down"}
    for module in services.modules:
        for check in module.health:
            name = module.name if check.name == module.name else f"{module.name}.{check.name}"
            try:
                with trio.fail_after(1.0):
                    report = await check.check(services.context)
                status = reported[report.status]
            except Exception:
                status = "down"
            statuses[name] = status
            if status == "down" and check.critical:
                ok = False
    return ok, statuses


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
    ctx = app.context
    tenants = ctx.get(TenantRepository)
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
        if await tenants.get(tenant_id) is None:
            # Another worker may create it meanwhile: that is as good.
            with contextlib.suppress(ConflictError):
                await tenants.create(tenant_id, name, actor="system")
        result[tenant_id] = await _demo_key(ctx, tenant_id, saved.get(tenant_id))
    if result != saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        os.chmod(path, 0o600)
    if any(module.name == "content" for module in app.modules):
        await _demo_content(ctx)
    if any(module.name == "commerce" for module in app.modules):
        await _demo_products(ctx)
    await _demo_plugins(app)
    return DemoKeys(operator, result[operator], DEMO_TENANT, result[DEMO_TENANT])


#: The demo tenant's content: (kind, slug, title, body, published).
_DEMO_NODES = (
    ("page", "welcome", "Welcome", "# Welcome\n\nThis page was published by `--demo`.", True),
    ("page", "about", "About us", "A draft: publish it with the command below.", False),
    ("post", "hello-world", "Hello, world", "The first post of the demo blog.", True),
)


async def _demo_content(ctx: ModuleContext) -> None:
    """Create the demo tenant's pages and post once (a store that has any keeps them)."""
    store = ctx.store.store
    if await store.fetchval("SELECT 1 FROM content_nodes WHERE tenant_id = $1", DEMO_TENANT):
        return
    content = ctx.get(ContentService)
    who = Who("system")
    for kind, slug, title, body, published in _DEMO_NODES:
        node_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"triotok-demo/{slug}"))
        translation = Translation("en", title, slug, body=body)
        command = CreateNode(kind, (translation,), who, tags=("demo",))
        with contextlib.suppress(Conflict):  # another worker created it meanwhile
            await content.ask(DEMO_TENANT, node_id, command)
            if published:
                await content.ask(DEMO_TENANT, node_id, TransitionNode(Command.PUBLISH, who))
        # Seeded, not in use: start with no active entities (they come back on demand).
        await content.passivate(DEMO_TENANT, node_id)


#: The demo tenant's products: (sku, title, price in cents, attributes, units on hand).
_DEMO_PRODUCTS: tuple[tuple[str, str, int, dict[str, str | int | bool], int], ...] = (
    ("MUG-BLUE", "Blue mug, 350 ml", 1290, {"color": "blue", "volume_ml": 350}, 40),
    ("TEE-BLACK-M", "Black T-shirt, M", 2490, {"color": "black", "size": "M"}, 25),
    ("POSTER-A2", "Poster, A2", 1500, {"format": "A2", "framed": False}, 10),
)


async def _demo_products(ctx: ModuleContext) -> None:
    """Create the demo tenant's three active, stocked products once."""
    store = ctx.store.store
    if await store.fetchval("SELECT 1 FROM commerce_products WHERE tenant_id = $1", DEMO_TENANT):
        return
    products = ctx.get(ProductService)
    who = ProductWho("system")
    for sku, title, price, attributes, on_hand in _DEMO_PRODUCTS:
        product_id = demo_product_id(sku)
        create = CreateProduct(sku, title, price, "EUR", who, attributes=attributes)
        with contextlib.suppress(Conflict):  # another worker created it meanwhile
            await products.ask(DEMO_TENANT, product_id, create)
            activate = UpdateProduct({"status": ProductStatus.ACTIVE}, who, expected_version=1)
            await products.ask(DEMO_TENANT, product_id, activate)
            await products.ask(DEMO_TENANT, product_id, AdjustInventory(on_hand, "demo stock", who))
        await products.passivate(DEMO_TENANT, product_id)


#: The first-party plugins ``--demo`` enables (once) and switches on for the demo tenant;
#: the demo's webhooks may only call this machine.
_DEMO_GRANTS: dict[str, dict[str, Any]] = {
    "webhooks": {"hosts": ("127.0.0.1", "localhost")},
    "seo": {},
}


async def _demo_plugins(app: Application) -> None:
    manager = app.services.plugins
    if not isinstance(manager, PluginManager):
        return
    for name, narrowed in _DEMO_GRANTS.items():
        try:
            status = manager.status(name)
        except LookupError:
            continue
        if status.state is not PluginState.DISCOVERED or status.requested is None:
            continue  # an operator decided already (or it was refused)
        grants = replace(status.requested, **narrowed)
        await manager.enable(name, grants, who="system", audit_tenant=app.settings.operator_tenant)
        await manager.switch(name, DEMO_TENANT, True, who="system")


async def _demo_key(ctx: ModuleContext, tenant_id: str, saved: str | None) -> str:
    keys = ctx.get(ApiKeyRepository)
    if saved is not None:
        key_id = parse_key(saved)
        if key_id is not None:
            stored = await keys.get(key_id)
            if (
                stored is not None
                and stored.tenant_id == tenant_id
                and stored.revoked_at is None
                and stored.key_hash == hash_key(saved)
            ):
                return saved
    _, plaintext = await keys.create(tenant_id, Role.ADMIN, actor="system")
    return plaintext


def demo_product_id(sku: str) -> str:
    """The id of the demo product ``sku`` (the same in every demo store)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"triotok-demo/products/{sku}"))


def demo_banner(app: Application) -> str:
    """What ``triotok serve --demo`` prints: the keys and commands to try."""
    demo = app.demo
    url = app.url
    json_type = "Content-Type: application/json"
    mug = demo_product_id("MUG-BLUE")
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
            "",
            "Content (the headless CMS; the demo tenant has two pages and a post):",
            f'  curl -s -H "Authorization: Bearer $KEY" "{url}/api/content/nodes?status=published"',
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" -H "{json_type}"'
            f' -d \'{{"kind": "post", "translations": {{"en": {{"title": "My post",'
            f' "slug": "my-post", "body": "Hello"}}}}}}\' {url}/api/content/nodes',
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" {url}/api/content/nodes/ID/publish',
            "    (ID: the id the create answered; publishing needs an admin key)",
            "",
            "Products (three active, stocked products; ID: a product's id):",
            f'  curl -s -H "Authorization: Bearer $KEY" "{url}/api/products?status=active"',
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" -H "{json_type}"'
            f' -d \'{{"delta": 5, "reason": "delivery"}}\' {url}/api/products/ID/inventory',
            "",
            "Orders (place two blue mugs and wait for the stock; then pay and ship it;"
            " ORDER: the id it answered):",
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" -H "{json_type}"'
            f' -H "Prefer: wait=5" -H "Idempotency-Key: demo-order-1"'
            f' -d \'{{"items": [{{"product_id": "{mug}", "quantity": 2}}]}}\' {url}/api/orders',
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" {url}/api/orders/ORDER/pay',
            f'  curl -s -X POST -H "Authorization: Bearer $KEY" -H "{json_type}"'
            f' -d \'{{"tracking_number": "TRACK-1"}}\' {url}/api/orders/ORDER/ship',
            f'  curl -s -H "Authorization: Bearer $KEY" "{url}/api/orders?status=shipped"',
            "",
            "Search (lists and search answer from the index; min_token=<X-Consistency-Token>):",
            f'  curl -s -H "Authorization: Bearer $KEY" "{url}/api/search?q=mug"',
            f'  curl -s -H "Authorization: Bearer $KEY" "{url}/api/search?type=content&q=welcome"',
            "",
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
