"""The flags module: feature flags, global and per tenant, stored and cached on every node.

Declared as :data:`FLAGS`: the ``feature_flags`` and ``feature_flag_tenants``
tables, ``/system/flags`` (operators define flags: on/off, a rollout
percentage by a stable hash of the tenant or key, allow and deny lists of
tenants) and ``/api/flags`` (a tenant's admins see every flag's value for
their tenant and, for tenant-editable flags, choose it), and the loader
``/app/modules/flags/loader`` that keeps ``ctx.flags`` (this node's
:class:`~triotok.modules.FlagSet`) current from the ``flag.*`` events of every
node. Code asks ``ctx.flags.enabled("name", tenant=...)``; a route declared
with ``flag="name"`` answers 404 while the flag is off. The rules are in
:mod:`triotok.modules._flags` and docs/reference/flags.md;
:class:`TriotokProvider` serves the same flags through OpenFeature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec
from .._context import ModuleContext
from .._module import Grant, HealthCheck, HealthReport, Module
from .._permissions import Permission
from ._loader import FlagLoader as FlagLoader
from ._loader import Reload as Reload
from ._openfeature import TriotokProvider as TriotokProvider
from ._repository import FlagRepository as FlagRepository
from ._schema import SCHEMA

# The event payloads (``triotok.modules.flags._events``: FlagChanged,
# FlagTenantChanged) stay out of the package's public names: the schema
# registry resolves their annotations in the module that defines them.

__all__ = ("FLAGS", "FlagLoader", "FlagRepository", "Reload", "TriotokProvider")


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(FlagRepository())


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    options = {"refresh": float(ctx.settings.get("refresh", 60.0))}
    arguments = (ctx.flags, ctx.store, ctx.events, ctx.get(FlagRepository))
    return [ChildSpec("loader", FlagLoader, arguments, options)]


async def _loaded(ctx: ModuleContext) -> HealthReport:
    stats = ctx.flags.statistics()
    return HealthReport("ok" if stats.loaded else "degraded", stats.as_dict())


#: The flags module's declaration.
FLAGS = Module(
    name="flags",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("flags", "read"), ("admin",)),
        Grant(Permission("flags", "update"), ("admin",)),
    ),
    routes=_routes,
    actors=_actors,
    setup=_setup,
    health=(HealthCheck("flags", _loaded, critical=False),),
    description="feature flags: global and per tenant, rollouts, allow/deny lists",
)

fixup_module_metadata(__name__, globals())
