"""What the HTTP layer needs from the application, handed over by the composition root."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..modules import Module, ModuleContext, RoleTable
from ..modules.access import KeyDirectory
from ..modules.tenants import TenantDirectory
from ..store import StoreHandle
from ..supervision import ActorSystem
from ..telemetry import Telemetry
from ..transport import DeadLetterStore, EventBus
from ._stale import StaleResponses

if TYPE_CHECKING:
    from ._routes import Route

__all__ = ("HttpOptions", "Services")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """HTTP settings (the composition root fills them from ``triotok.config.Settings``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    reuse_port: bool = False
    graceful_timeout: float = 10.0
    access_log: bool = False
    max_body_bytes: int = 1_048_576
    rate_limit_per_ip: int = 100
    rate_limit_per_key: int = 600
    trust_proxy: bool = False
    #: How many trusted proxies append to X-Forwarded-For in front of the server.
    trusted_proxy_hops: int = 1
    operator_tenant: str = "ops"
    max_connections: int = 1000
    keep_alive_timeout: float = 5.0
    body_timeout: float = 30.0


@dataclass(slots=True)
class Services:
    """The running application as the routes see it: the modules and their context."""

    options: HttpOptions
    context: ModuleContext
    modules: tuple[Module, ...] = ()
    #: Actors that must be running for ``/ready`` to answer 200: the platform's
    #: and every module's declared subtree (computed by the composition root).
    required: tuple[str, ...] = ()
    version: str = ""
    started_at: float = field(default_factory=time.time)
    #: The dead-letter stores of events by source (``"bus"``, ``"outbox"``), one API for all.
    event_dead_letters: Mapping[str, DeadLetterStore] = field(default_factory=dict)
    #: Traces and metrics (``triotok.telemetry.Telemetry``); None: none at all.
    telemetry: Telemetry | None = None
    #: The last good answers of ``serve_stale`` reads (survive restarts of ``/app/http``).
    stale: StaleResponses = field(default_factory=StaleResponses)
    #: The plugin manager (``triotok.plugins.PluginManager``) when the application has one.
    plugins: Any = None
    #: Set by ``/app/http`` once it serves: the Quart app and the bound port.
    app: Any = None
    port: int | None = None

    @property
    def system(self) -> ActorSystem:
        return self.context.system

    @property
    def store(self) -> StoreHandle:
        return self.context.store

    @property
    def bus(self) -> EventBus:
        return self.context.bus

    @property
    def tenants(self) -> TenantDirectory:
        return self.context.tenants

    @property
    def keys(self) -> KeyDirectory:
        return self.context.keys

    @property
    def roles(self) -> RoleTable:
        return self.context.roles

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route of every module, in composition order, then the plugins' endpoints."""
        from ._plugin_routes import plugin_routes

        modules = tuple(route for module in self.modules for route in module.route_table())
        return modules + plugin_routes(self.plugins)
