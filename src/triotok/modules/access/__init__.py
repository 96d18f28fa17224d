"""The access module: API keys (hashed, cached) and the base roles.

Declared as :data:`ACCESS`: the ``api_keys`` table, ``/api/keys``, the
``keys:*`` permissions, and the key resolver actor at ``/app/access``::

    from triotok.modules import authorize
    from triotok.modules.access import verify_key

    key = verify_key(await keys.get(parse_key(presented)), presented)   # Unauthenticated
    authorize(roles, key.role, key.tenant_id, Permission("tenant", "read"),
              request_tenant="acme", operator_tenant="ops")            # Forbidden
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec
from .._context import ModuleContext
from .._module import Grant, HealthCheck, HealthReport, Module
from .._permissions import Permission
from ._keys import ApiKey as ApiKey
from ._keys import ApiKeyRepository as ApiKeyRepository
from ._keys import ApiKeyRevoked as ApiKeyRevoked
from ._keys import KeyDirectory as KeyDirectory
from ._keys import KeyResolver as KeyResolver
from ._keys import hash_key as hash_key
from ._keys import parse_key as parse_key
from ._keys import verify_key as verify_key
from ._roles import Role as Role
from ._schema import SCHEMA

__all__ = (
    "ACCESS",
    "ApiKey",
    "ApiKeyRepository",
    "ApiKeyRevoked",
    "KeyDirectory",
    "KeyResolver",
    "Role",
    "hash_key",
    "parse_key",
    "verify_key",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(ApiKeyRepository(ctx.store))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    return [ChildSpec("access", KeyResolver, (ctx.keys, ctx.get(ApiKeyRepository), ctx.events))]


async def _cache(ctx: ModuleContext) -> HealthReport:
    stats = ctx.keys.statistics()
    if stats is None:
        return HealthReport("down", {"cache": None})
    return HealthReport("ok", {"cache": stats.as_dict()})


_ADMIN = ("admin",)

#: The access module's declaration.
ACCESS = Module(
    name="access",
    path="access",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("keys", "create"), _ADMIN),
        Grant(Permission("keys", "read"), _ADMIN),
        Grant(Permission("keys", "delete"), _ADMIN),
        Grant(Permission("keys", "admin", "platform"), _ADMIN),
    ),
    routes=_routes,
    actors=_actors,
    setup=_setup,
    health=(HealthCheck("access", _cache),),
    description="API keys: hashed, cached, revocable; the roles they carry",
)

fixup_module_metadata(__name__, globals())
