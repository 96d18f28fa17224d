"""The plugin manager: ``/app/plugins``, one supervisor subtree per enabled plugin.

States of a plugin (``GET /system/plugins``)::

    discovered --enable--> enabled --(subtree up)--> running
         ^                    |                        |  \\
         |                    +--(start fails)--> failed  (subtree exceeded its intensity)
         |                                         |  ^
         +------------- disable <-----------------+--+-- restart --> enabled ...
    (a refused candidate is failed from the start, and stays so)

Invariants:

* A plugin runs only with a grant an operator gave (persisted, audited) that
  is within what it asked for; its subtree, bus subscriptions and runtime
  exist exactly while it is ``enabled``/``running``.
* A plugin's subtree is a *temporary* child of ``/app/plugins``: when it
  fails (its restart intensity exceeded) it is removed and the plugin is
  ``failed`` with the reason; nothing above it restarts, so a plugin can
  never take the platform down. The operator restarts it.
* Events reach a plugin only for tenants that switched it on.
* Every node follows the store: an enable, disable or switch made on one
  node reaches the others through the outbox feed (``plugin.changed``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .._exceptions import ActorNotFound, ChildStartFailed, InvalidInput
from ..actors import Actor, ActorRef, ActorState
from ..modules import Grant, ModuleContext, Permission
from ..resilience import Backoff, CircuitBreaker
from ..store import Migration, Schema
from ..supervision import ChildSpec, Restart, Strategy, SupervisorRef, SupervisorSpec
from ..transport import Envelope
from ._api import Capabilities, Endpoint, Limits
from ._context import PluginContext
from ._discovery import Discovered
from ._errors import PluginNotFound, PluginRefused, PluginUnavailable
from ._gate import CapabilityGate, OutboundHttp
from ._inline import PluginHost
from ._process import PRELOAD, ProcessHost
from ._repository import PluginRepository
from ._run import PluginRun, PluginSubscriber
from ._schema import SCHEMA

__all__ = ("PluginManager", "PluginOptions", "PluginState", "PluginStatus")

logger = logging.getLogger("triotok.plugins")

_ROLES = {
    "read": ("viewer", "editor", "admin"),
    "create": ("editor", "admin"),
    "update": ("editor", "admin"),
    "delete": ("editor", "admin"),
    "admin": ("admin",),
}


class PluginState(enum.Enum):
    """Where a plugin is in its lifecycle (see the module docstring)."""

    DISCOVERED = "discovered"
    ENABLED = "enabled"
    RUNNING = "running"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class PluginOptions:
    """How the manager runs plugins (the composition root fills it from the settings).

    ``limits`` overrides a plugin's declared :class:`Limits` by name and
    ``settings`` gives each plugin its settings; ``breaker`` configures each
    plugin's circuit breaker (``CircuitBreaker`` keyword arguments).
    """

    intensity: int = 3
    period: float = 60.0
    backoff: Backoff = field(default_factory=lambda: Backoff(min=0.5, max=30.0))
    breaker: Mapping[str, Any] = field(
        default_factory=lambda: {
            "window_size": 20,
            "minimum_calls": 5,
            "failure_rate_threshold": 50.0,
            "wait_in_open": 30.0,
            "half_open_calls": 2,
        }
    )
    limits: Mapping[str, Limits] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """A plugin as operators see it (``GET /system/plugins``, ``triotok plugins list``)."""

    name: str
    state: PluginState
    source: str
    reason: str | None = None
    version: str | None = None
    api: str | None = None
    description: str = ""
    isolation: str | None = None
    requested: Capabilities | None = None
    grants: Capabilities | None = None
    endpoints: tuple[str, ...] = ()
    subscriptions: tuple[str, ...] = ()
    tenants: int = 0
    path: str | None = None
    host_state: str | None = None
    restarts: int = 0
    breaker: str | None = None
    load_ms: float | None = None
    statistics: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "source": self.source,
            "reason": self.reason,
            "version": self.version,
            "api": self.api,
            "description": self.description,
            "isolation": self.isolation,
            "requested": self.requested.as_dict() if self.requested is not None else None,
            "grants": self.grants.as_dict() if self.grants is not None else None,
            "endpoints": list(self.endpoints),
            "subscriptions": list(self.subscriptions),
            "tenants": self.tenants,
            "path": self.path,
            "host_state": self.host_state,
            "restarts": self.restarts,
            "breaker": self.breaker,
            "load_ms": self.load_ms,
            "statistics": dict(self.statistics),
        }


@dataclass(eq=False)
class _Record:
    found: Discovered
    state: PluginState
    reason: str | None = None
    grants: Capabilities | None = None
    run: PluginRun | None = None
    load_seconds: float | None = None
    subscribed: list[tuple[str, ActorRef]] = field(default_factory=list)
    #: The node of the running subtree: a failure report of another one is stale.
    node: Any = None


@dataclass(frozen=True, slots=True)
class _Failed:
    name: str
    node: Any  # the failed supervisor's node: its last error is the reason


@dataclass(frozen=True, slots=True)
class _Reconcile:
    name: str
    what: str


class _ManagerActor(Actor):
    """``/app/plugins/manager``: follows subtree failures and other nodes' changes."""

    def __init__(self, manager: PluginManager) -> None:
        self._manager = manager

    async def receive(self, message: Any) -> None:
        if isinstance(message, _Failed):
            await self._manager._subtree_failed(message.name, message.node)
        elif isinstance(message, _Reconcile):
            await self._manager._reconcile(message.name, message.what)


def endpoint_path(name: str, endpoint: Endpoint) -> str:
    """The route path of a plugin's endpoint (Quart syntax)."""
    return f"/api/plugins/{name}{endpoint.path}"


class PluginManager:
    """Discovered plugins, their states and grants, and the ``/app/plugins`` subtree."""

    def __init__(self, found: Sequence[Discovered], options: PluginOptions | None = None) -> None:
        self.options = options or PluginOptions()
        self._records: dict[str, _Record] = {}
        self._extra: list[Discovered] = []  # candidates whose name an earlier one holds
        for item in found:
            process = item.plugin is not None and item.plugin.isolation == "process"
            if item.ok and process and item.location[:1] == ("module",):
                PRELOAD.add(item.location[1].partition(":")[0])
            if item.name in self._records:
                self._extra.append(item)
                continue
            state = PluginState.DISCOVERED if item.ok else PluginState.FAILED
            self._records[item.name] = _Record(item, state, reason=item.error)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._switched: dict[str, set[str]] = {}
        self._lock = trio.Lock()
        self._changed = trio.Event()
        self._http = OutboundHttp()
        self._ctx: ModuleContext | None = None
        self._repository: PluginRepository | None = None
        self._supervisor: SupervisorRef | None = None
        self._actor: ActorRef | None = None
        self._hook: tuple[Any, Any, Any] | None = None  # (runtime, ours, the one before)
        #: Where the subtree lives: ``/<system>/plugins`` once started.
        self.root = "/app/plugins"

    # ---------------------------------------------------------------- declarations

    @property
    def discovered(self) -> tuple[Discovered, ...]:
        return tuple(r.found for r in self._records.values()) + tuple(self._extra)

    def _ok(self) -> list[Discovered]:
        return [r.found for r in self._records.values() if r.found.ok]

    def schemas(self) -> tuple[Schema, ...]:
        """The manager's tables and each inline plugin's own migrations (``plugin.<name>``)."""
        out = [SCHEMA]
        for found in self._ok():
            assert found.module is not None
            migrations: tuple[Migration, ...] = found.module.migrations
            if migrations:
                out.append(Schema(f"plugin.{found.name}", migrations))
        return tuple(out)

    def permissions(self) -> tuple[Grant, ...]:
        """``plugin.<name>:<action>`` for every endpoint (the Module's own grants if it has any)."""
        grants: list[Grant] = []
        for found in self._ok():
            assert found.module is not None
            if found.module.permissions:
                grants.extend(found.module.permissions)
                continue
            for action in sorted({e.action for e in found.endpoints}):
                grants.append(Grant(Permission(f"plugin.{found.name}", action), _ROLES[action]))
        return tuple(grants)

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        """``(plugin name, endpoint)`` of every discovered plugin, for the URL map."""
        return [(found.name, e) for found in self._ok() for e in found.endpoints]

    # ---------------------------------------------------------------- lifecycle

    async def start(self, ctx: ModuleContext) -> None:
        """Start ``/app/plugins`` and every plugin left enabled (a failing one is only marked)."""
        self._ctx = ctx
        self._repository = PluginRepository(ctx.store)
        system = ctx.system
        spec = SupervisorSpec(
            "plugins", [ChildSpec("manager", _ManagerActor, (self,))], intensity=10, period=10.0
        )
        self._supervisor = await system.spawn_supervisor(spec)
        self.root = f"/{system.name}/plugins"
        actor = system.ref(f"{self.root}/manager")
        assert isinstance(actor, ActorRef)
        self._actor = actor
        self._install_hook(system.runtime)
        await ctx.events.subscribe("plugins", self._on_feed, prefix="plugin.changed")
        self._switched = await self._repository.switched_on()
        grants = await self._repository.grants()
        async with self._lock:
            for name, record in self._records.items():
                saved = grants.get(name)
                if saved is None or record.state is PluginState.FAILED:
                    continue
                record.grants = saved.grants
                if saved.enabled:
                    await self._start(record, saved.grants)
                else:
                    record.state = PluginState.DISABLED
        self._notify()

    async def aclose(self) -> None:
        """Stop following the tree and the feed; close the plugins' HTTP client.

        The subtree itself stops with the system (or with :meth:`stop`).
        """
        if self._ctx is not None:
            await self._ctx.events.unsubscribe("plugins")
        if self._hook is not None:
            runtime, ours, previous = self._hook
            if runtime.on_state_change is ours:
                runtime.on_state_change = previous
            self._hook = None
        self._actor = None
        await self._http.aclose()

    async def stop(self) -> None:
        """Stop ``/app/plugins`` and every plugin in it (their grants stay as they are)."""
        ctx = self._ctx
        assert ctx is not None
        for record in self._records.values():
            if record.run is not None:
                for pattern, ref in record.subscribed:
                    await ctx.bus.unsubscribe(pattern, ref, group=f"plugin.{record.found.name}")
                record.subscribed.clear()
                record.run.runtime = None
                record.run, record.node = None, None
        await ctx.system.stop_actor(self.root)
        await self.aclose()

    def _install_hook(self, runtime: Any) -> None:
        previous = runtime.on_state_change
        prefix = self.root + "/"

        def on_state_change(node: Any, state: ActorState) -> None:
            if previous is not None:
                previous(node, state)
            path: str = node.path
            if not path.startswith(prefix):
                return
            self._notify()
            name = path[len(prefix) :].partition("/")[0]
            if (
                state is ActorState.FAILED
                and path == prefix + name
                and name in self._records
                and self._actor is not None
            ):
                self._actor.tell(_Failed(name, node))

        runtime.on_state_change = on_state_change
        self._hook = (runtime, on_state_change, previous)

    async def _on_feed(self, envelope: Envelope) -> None:
        if envelope.event_type == "plugin.changed" and self._actor is not None:
            payload = envelope.payload
            if payload.name in self._records:
                self._actor.tell(_Reconcile(payload.name, payload.what))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, name: str, predicate: Callable[[PluginStatus], bool]) -> PluginStatus:
        """Wait until ``predicate(status(name))`` holds (bound it with ``trio.fail_after``)."""
        while True:
            changed = self._changed
            current = self.status(name)
            if predicate(current):
                return current
            await changed.wait()

    # ---------------------------------------------------------------- starting and stopping

    def _breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            from .._exceptions import DomainError

            breaker = CircuitBreaker(
                f"plugin.{name}", ignore_exceptions=(DomainError,), **self.options.breaker
            )
            self._breakers[name] = breaker
        return breaker

    def _plan(self, module: Any, grants: Capabilities) -> tuple[list[tuple[int, str]], list[str]]:
        """Each declared subscription narrowed to the grant: ``(index, pattern)``; the refused."""
        plan: list[tuple[int, str]] = []
        refused: list[str] = []
        for index, subscription in enumerate(module.subscriptions):
            pattern = subscription.pattern
            if grants.may_subscribe(pattern):
                plan.append((index, pattern))
                continue
            narrowed = [
                g for g in grants.subscribe if Capabilities(subscribe=(pattern,)).may_subscribe(g)
            ]
            if narrowed:
                plan.extend((index, g) for g in narrowed)
            else:
                refused.append(pattern)
        return plan, refused

    async def _start(self, record: _Record, grants: Capabilities) -> None:
        """Start ``record``'s subtree with ``grants``; on failure it is ``failed``."""
        ctx, repository, supervisor = self._ctx, self._repository, self._supervisor
        assert ctx is not None
        assert repository is not None
        assert supervisor is not None
        found = record.found
        assert found.plugin is not None
        name = found.name
        started = time.perf_counter()
        record.state, record.reason, record.grants = PluginState.ENABLED, None, grants
        self._notify()
        try:
            cls = found.plugin
            instance = cls()
            module = instance.module()
            limits = self.options.limits.get(name, cls.limits)
            settings = dict(self.options.settings.get(name, {}))
            gate = CapabilityGate(
                name,
                grants,
                repository=repository,
                publish=self._publish,
                switched_on=lambda tenant: self.switched_on(name, tenant),
                http=self._http,
            )
            context = PluginContext(name, gate, grants=grants, settings=settings, limits=limits)
            breaker = self._breaker(name)
            breaker.reset()
            run = PluginRun(
                name, cls, found.location, instance, module, grants, gate, context, breaker,
                limits, settings,
            )  # fmt: skip
            run.switched_on = lambda tenant: self.switched_on(name, tenant)
            run.notify = self._notify
            run.plan, run.refused_subscriptions = self._plan(module, grants)
            for pattern in run.refused_subscriptions:
                await gate.refuse("subscribe", pattern, None, "not in the grant")
            children = self._children(run, ctx)
        except Exception as exc:
            self._failed(record, f"{type(exc).__name__}: {exc}")
            return
        spec = SupervisorSpec(
            name,
            children,
            strategy=Strategy.REST_FOR_ONE,
            intensity=self.options.intensity,
            period=self.options.period,
            backoff=self.options.backoff,
        )
        record.run = run
        try:
            await supervisor.start_child(
                ChildSpec(name, spec, restart=Restart.TEMPORARY, shutdown=None)
            )
        except ChildStartFailed as exc:
            cause: BaseException = exc
            while isinstance(cause, ChildStartFailed):
                cause = cause.cause
            self._failed(record, f"it did not start: {type(cause).__name__}: {cause}")
            return
        record.node = self._node(f"{self.root}/{name}")
        try:
            for number, (_, pattern) in enumerate(run.plan, 1):
                ref = ctx.system.ref(f"{self.root}/{name}/on-{number}")
                assert isinstance(ref, ActorRef)
                await ctx.bus.subscribe(pattern, ref, group=f"plugin.{name}")
                record.subscribed.append((pattern, ref))
        except Exception as exc:
            await self._stop(record)
            self._failed(record, f"subscribing failed: {type(exc).__name__}: {exc}")
            return
        record.state = PluginState.RUNNING
        record.load_seconds = time.perf_counter() - started
        self._notify()
        logger.info("plugin %s running (%.1f ms)", name, record.load_seconds * 1000)

    def _children(self, run: PluginRun, ctx: ModuleContext) -> list[ChildSpec]:
        name = run.name
        if run.isolation == "process":
            children = [ChildSpec("host", ProcessHost, (run,), shutdown=run.limits.deadline + 5.0)]
        else:
            module_context = ModuleContext(
                name,
                ctx.system,
                ctx.store,
                ctx.bus,
                ctx.events,
                ctx.tenants,
                ctx.keys,
                ctx.roles,
                run.settings,
                ctx.clock,
                ctx.operator_tenant,
            )
            module_context.provide(run.context)
            if run.module.setup is not None:
                run.module.setup(module_context)
            children = [ChildSpec("host", PluginHost, (run, module_context))]
        children += [
            ChildSpec(f"on-{number}", PluginSubscriber, (run, index, pattern))
            for number, (index, pattern) in enumerate(run.plan, 1)
        ]
        if run.isolation == "inline" and run.module.actors is not None:
            own = list(run.module.actors(module_context))
            taken = {c.id for c in children}
            for spec in own:
                if spec.id in taken:
                    raise PluginRefused(name, f"its actor id {spec.id!r} is the platform's")
            children += own
        return children

    async def _stop(self, record: _Record) -> None:
        ctx, supervisor = self._ctx, self._supervisor
        assert ctx is not None
        assert supervisor is not None
        for pattern, ref in record.subscribed:
            await ctx.bus.unsubscribe(pattern, ref, group=f"plugin.{record.found.name}")
        record.subscribed.clear()
        if any(c.id == record.found.name for c in supervisor.which_children()):
            await supervisor.terminate_child(record.found.name)
        if record.run is not None:
            record.run.runtime = None
        record.run, record.node = None, None

    def _failed(self, record: _Record, reason: str) -> None:
        record.state, record.reason, record.run, record.node = (
            PluginState.FAILED,
            reason,
            None,
            None,
        )
        logger.warning("plugin %s failed: %s", record.found.name, reason)
        self._notify()

    async def _subtree_failed(self, name: str, node: Any) -> None:
        async with self._lock:
            record = self._records[name]
            if record.run is None or record.node is not node:
                return  # a run that ended already, or one that never started
            reason = "its subtree exceeded its restart intensity"
            error = node.last_error
            if error is not None:
                reason = f"{reason}: {error}"
            ctx = self._ctx
            assert ctx is not None
            for pattern, ref in record.subscribed:
                await ctx.bus.unsubscribe(pattern, ref, group=f"plugin.{name}")
            record.subscribed.clear()
            self._failed(record, reason)

    def _node(self, path: str) -> Any:
        assert self._ctx is not None
        return self._ctx.system.runtime.lookup(path)

    async def _reconcile(self, name: str, what: str) -> None:
        """Follow a change made on any node (this one included: then nothing differs)."""
        repository = self._repository
        assert repository is not None
        if what == "tenant":
            self._switched = await repository.switched_on()
            self._notify()
            return
        saved = (await repository.grants()).get(name)
        async with self._lock:
            record = self._records[name]
            if saved is None or not record.found.ok:
                return
            running = record.state in (PluginState.ENABLED, PluginState.RUNNING)
            if saved.enabled and (not running or record.grants != saved.grants):
                if running:
                    await self._stop(record)
                await self._start(record, saved.grants)
            elif not saved.enabled and record.state is not PluginState.DISABLED:
                await self._stop(record)
                record.state, record.reason = PluginState.DISABLED, None
                self._notify()

    async def _publish(self, envelope: Envelope) -> None:
        assert self._ctx is not None
        async with self._ctx.store.store.transaction() as tx:
            await tx.publish(envelope)

    # ---------------------------------------------------------------- operators

    def _record(self, name: str) -> _Record:
        record = self._records.get(name)
        if record is None:
            raise PluginNotFound(name)
        return record

    def _usable(self, name: str) -> _Record:
        record = self._record(name)
        if not record.found.ok:
            raise PluginRefused(name, f"it was refused at discovery: {record.found.error}")
        return record

    async def enable(
        self,
        name: str,
        grants: Capabilities | None = None,
        *,
        who: str,
        audit_tenant: str | None = None,
    ) -> PluginStatus:
        """Grant ``grants`` (default: everything it asks for), persist and audit, start it."""
        record = self._usable(name)
        found = record.found
        assert found.plugin is not None
        assert self._repository is not None
        requested = found.plugin.capabilities
        given = grants if grants is not None else requested
        beyond = given.within(requested)
        if beyond:
            raise InvalidInput(
                f"the grant gives more than {name} asks for: {', '.join(beyond)}", field="grants"
            )
        async with self._lock:
            await self._repository.set_grant(
                name,
                enabled=True,
                grants=given,
                version=found.plugin.metadata.version,
                who=who,
                audit_tenant=audit_tenant,
                action="plugin.enable",
            )
            if record.state in (PluginState.ENABLED, PluginState.RUNNING):
                await self._stop(record)
            await self._start(record, given)
        return self.status(name)

    async def disable(
        self, name: str, *, who: str, audit_tenant: str | None = None
    ) -> PluginStatus:
        record = self._usable(name)
        assert record.found.plugin is not None
        assert self._repository is not None
        async with self._lock:
            await self._repository.set_grant(
                name,
                enabled=False,
                grants=record.grants or Capabilities(),
                version=record.found.plugin.metadata.version,
                who=who,
                audit_tenant=audit_tenant,
                action="plugin.disable",
            )
            await self._stop(record)
            record.state, record.reason = PluginState.DISABLED, None
            self._notify()
        return self.status(name)

    async def restart(
        self, name: str, *, who: str, audit_tenant: str | None = None
    ) -> PluginStatus:
        """Start an enabled (or failed) plugin again from a fresh instance, with its grant."""
        record = self._usable(name)
        if record.state in (PluginState.DISCOVERED, PluginState.DISABLED) or record.grants is None:
            raise PluginUnavailable(name, "it is not enabled; enable it first")
        assert self._repository is not None
        async with self._lock:
            await self._repository.audit(_restart_entry(name, who, audit_tenant))
            await self._stop(record)
            await self._start(record, record.grants)
        return self.status(name)

    # ---------------------------------------------------------------- tenants

    def switched_on(self, name: str, tenant: str) -> bool:
        return tenant in self._switched.get(name, ())

    async def switch(self, name: str, tenant: str, on: bool, *, who: str) -> None:
        """A tenant switches plugin ``name`` on or off for itself (persisted and audited)."""
        record = self._usable(name)
        if on and record.state not in (PluginState.ENABLED, PluginState.RUNNING):
            raise PluginUnavailable(name, "an operator has not enabled it")
        assert self._repository is not None
        await self._repository.switch(name, tenant, on, who=who)
        tenants = self._switched.setdefault(name, set())
        if on:
            tenants.add(tenant)
        else:
            tenants.discard(tenant)
        self._notify()

    async def stored(self, name: str, tenant: str, key: str) -> Any:
        """The value at ``key`` in plugin ``name``'s granted namespace for ``tenant`` (or None)."""
        record = self._record(name)
        namespace = record.grants.storage if record.grants is not None else None
        if namespace is None or self._repository is None:
            return None
        return await self._repository.get(namespace, tenant, key)

    def available(self) -> list[PluginStatus]:
        """The plugins a tenant may switch on (enabled by an operator)."""
        return [
            self.status(name)
            for name, record in self._records.items()
            if record.state in (PluginState.ENABLED, PluginState.RUNNING, PluginState.FAILED)
            and record.grants is not None
        ]

    # ---------------------------------------------------------------- calls and views

    def run(self, name: str) -> PluginRun:
        """The current run of ``name`` (:class:`PluginUnavailable` unless it is running)."""
        record = self._record(name)
        if record.run is None or record.state is not PluginState.RUNNING:
            raise PluginUnavailable(name, f"it is {record.state.value}")
        return record.run

    def status(self, name: str) -> PluginStatus:
        record = self._record(name)
        found = record.found
        cls = found.plugin
        run = record.run
        host_state, restarts, path = None, 0, None
        if run is not None and self._ctx is not None:
            path = f"{self.root}/{name}"
            try:
                host = self._node(f"{path}/host")
                host_state, restarts = host.state.value, host.restarts
            except ActorNotFound:
                host_state = "stopped"
        subscriptions = tuple(p for _, p in run.plan) if run is not None else found.subscriptions
        load = record.load_seconds
        return PluginStatus(
            name=name,
            state=record.state,
            source=found.source,
            reason=record.reason,
            version=cls.metadata.version if cls is not None else None,
            api=cls.metadata.api if cls is not None else None,
            description=cls.metadata.description if cls is not None else "",
            isolation=cls.isolation if cls is not None else None,
            requested=cls.capabilities if cls is not None else None,
            grants=record.grants,
            endpoints=tuple(f"{e.method} {endpoint_path(name, e)}" for e in found.endpoints),
            subscriptions=subscriptions,
            tenants=len(self._switched.get(name, ())),
            path=path,
            host_state=host_state,
            restarts=restarts,
            breaker=self._breakers[name].state.value if name in self._breakers else None,
            load_ms=None if load is None else round(load * 1000, 3),
            statistics=run.statistics() if run is not None else {},
        )

    def list(self) -> list[PluginStatus]:
        """Every discovered plugin (refused duplicates too), by name."""
        out = [self.status(name) for name in sorted(self._records)]
        out += [
            PluginStatus(name=x.name, state=PluginState.FAILED, source=x.source, reason=x.error)
            for x in self._extra
        ]
        return out


def _restart_entry(name: str, who: str, tenant: str | None) -> Any:
    from ..modules.audit import AuditEntry

    return AuditEntry(who, "plugin.restart", f"plugin/{name}", tenant)


def plugins_directory(value: str | None) -> Path | None:
    return Path(value) if value else None
