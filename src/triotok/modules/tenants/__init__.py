"""The tenants module: records, their events, the repository and the cached resolver.

Declared as :data:`TENANTS`: the ``tenants`` table, ``/api/tenants``, the
``tenant:*`` and platform ``tenants:*`` permissions, and the resolver actor
at ``/app/tenants`` (a LoadingCache + SingleFlight every request goes
through)::

    from triotok.modules.tenants import TenantDirectory, TenantRepository, TenantResolver

    repository = TenantRepository(store_handle)
    directory = TenantDirectory("tenants")
    await system.spawn(TenantResolver, directory, repository, events, name="tenants")
    tenant = await directory.get("acme")      # Tenant, or None if unknown
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec
from .._context import ModuleContext
from .._module import Grant, HealthCheck, HealthReport, Module
from .._permissions import Permission
from ._model import TENANT_ID_PATTERN as TENANT_ID_PATTERN
from ._model import Tenant as Tenant
from ._model import TenantCreated as TenantCreated
from ._model import TenantDeactivated as TenantDeactivated
from ._model import TenantUpdated as TenantUpdated
from ._model import validate_tenant_id as validate_tenant_id
from ._repository import TenantRepository as TenantRepository
from ._repository import TenantRepositoryStatistics as TenantRepositoryStatistics
from ._resolver import TenantDirectory as TenantDirectory
from ._resolver import TenantResolver as TenantResolver
from ._schema import SCHEMA

__all__ = (
    "TENANTS",
    "TENANT_ID_PATTERN",
    "Tenant",
    "TenantCreated",
    "TenantDeactivated",
    "TenantDirectory",
    "TenantRepository",
    "TenantRepositoryStatistics",
    "TenantResolver",
    "TenantUpdated",
    "validate_tenant_id",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(TenantRepository(ctx.store))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    options = {
        "ttl": float(ctx.settings.get("cache_ttl", 30.0)),
        "negative_ttl": float(ctx.settings.get("negative_ttl", 5.0)),
    }
    arguments = (ctx.tenants, ctx.get(TenantRepository), ctx.events)
    return [ChildSpec("tenants", TenantResolver, arguments, options)]


async def _cache(ctx: ModuleContext) -> HealthReport:
    stats = ctx.tenants.statistics()
    if stats is None:
        return HealthReport("down", {"cache": None})
    return HealthReport("ok", {"cache": stats.as_dict()})


_ALL_ROLES = ("viewer", "editor", "admin")


def _platform(action: str) -> Grant:
    return Grant(Permission("tenants", action, "platform"), ("admin",))


#: The tenants module's declaration.
TENANTS = Module(
    name="tenants",
    path="tenants",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("tenant", "read"), _ALL_ROLES),
        Grant(Permission("tenant", "update"), ("admin",)),
        *(_platform(action) for action in ("create", "read", "update", "delete")),
    ),
    routes=_routes,
    actors=_actors,
    setup=_setup,
    health=(HealthCheck("tenants", _cache),),
    description="tenants, their settings, and the cached resolver every request uses",
)

fixup_module_metadata(__name__, globals())
