"""The tenants module's routes: ``/api/tenants``.

Platform routes (creating and managing any tenant) need an admin key of the
operator tenant; ``/api/tenants/current`` acts on the caller's own tenant
(``X-Tenant``, which must be the key's tenant). The only file of the module
that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from ..._exceptions import ConflictError, InvalidInput, NotFound
from ...http import Call, Reply, Route, json_bytes
from .._permissions import Permission
from . import _models as models
from ._model import Tenant
from ._repository import TenantRepository

__all__ = ("ROUTES",)

#: Path segments that cannot be tenant ids because they name routes.
RESERVED_IDS = frozenset({"current"})


def _given(value: Any) -> Any:
    return None if value is UNSET else value


# ---------------------------------------------------------------- platform (operator admins)


async def create_tenant(call: Call) -> Reply:
    body: models.TenantCreate = call.body
    if body.id in RESERVED_IDS:
        raise InvalidInput(f"{body.id!r} is reserved", code="invalid_tenant_id", field="id")
    tenant = await call.services.context.get(TenantRepository).create(
        body.id,
        body.name,
        _given(body.settings),
        actor=call.principal,
        trace_id=call.traceparent,
    )
    # A negative entry from an earlier probe must not hide the new tenant.
    call.services.tenants.invalidate(tenant.id)
    return Reply(tenant.as_dict(), 201, {"Location": f"/api/tenants/{tenant.id}"})


async def list_tenants(call: Call) -> dict[str, Any]:
    query: models.TenantPage = call.query
    tenants = await call.services.context.get(TenantRepository).list(
        after=query.after or "", limit=query.limit
    )
    return {"items": [t.as_dict() for t in tenants]}


async def get_tenant(call: Call) -> dict[str, Any]:
    tenant = await call.services.tenants.get(call.params["tenant_id"])
    if tenant is None:
        raise NotFound(f"no tenant {call.params['tenant_id']!r}")
    return tenant.as_dict()


async def _update(call: Call, tenant_id: str) -> dict[str, Any]:
    body: models.TenantUpdate = call.body
    tenant = await call.services.context.get(TenantRepository).update(
        tenant_id,
        name=_given(body.name),
        settings=_given(body.settings),
        expected_version=_given(body.version),
        actor=call.principal,
        trace_id=call.traceparent,
    )
    call.services.tenants.invalidate(tenant_id)  # this node at once; others via the event
    return tenant.as_dict()


async def update_tenant(call: Call) -> dict[str, Any]:
    return await _update(call, call.params["tenant_id"])


async def deactivate_tenant(call: Call) -> dict[str, Any]:
    tenant_id = call.params["tenant_id"]
    if tenant_id == call.services.context.operator_tenant:
        raise ConflictError("the operator tenant cannot be deactivated")
    tenant = await call.services.context.get(TenantRepository).deactivate(
        tenant_id, actor=call.principal, trace_id=call.traceparent
    )
    call.services.tenants.invalidate(tenant_id)
    return tenant.as_dict()


# ---------------------------------------------------------------- the caller's own tenant


# The JSON of cached tenants, by (id, version, updated_at): the hot read serves bytes.
# The time is in the key because the dict is the process's, shared by every
# application in it: (id, version) alone named another store's tenant.
_TENANT_JSON: dict[tuple[str, int, Any], bytes] = {}


def _tenant_json(tenant: Tenant) -> bytes:
    key = (tenant.id, tenant.version, tenant.updated_at)
    body = _TENANT_JSON.get(key)
    if body is None:
        if len(_TENANT_JSON) >= 10_000:
            _TENANT_JSON.clear()
        body = _TENANT_JSON[key] = json_bytes(tenant.as_dict())
    return body


async def current_tenant(call: Call) -> Reply:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return Reply(_tenant_json(call.tenant))


async def update_current(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    return await _update(call, call.tenant.id)


def _platform(action: str) -> Permission:
    return Permission("tenants", action, "platform")


ROUTES = (
    Route(
        "POST",
        "/api/tenants",
        create_tenant,
        "Create a tenant",
        "tenants",
        _platform("create"),
        operation_id="createTenant",
        status=201,
        body=models.TenantCreate,
        response=models.Tenant,
        errors=(409,),
    ),
    Route(
        "GET",
        "/api/tenants",
        list_tenants,
        "List tenants (keyset pagination by id)",
        "tenants",
        _platform("read"),
        operation_id="listTenants",
        query=models.TenantPage,
        response=models.TenantList,
    ),
    Route(
        "GET",
        "/api/tenants/current",
        current_tenant,
        "The caller's tenant",
        "tenants",
        Permission("tenant", "read"),
        operation_id="getCurrentTenant",
        response=models.Tenant,
        errors=(404,),
        criticality="critical",
        serve_stale=True,
    ),
    Route(
        "PATCH",
        "/api/tenants/current",
        update_current,
        "Rename the caller's tenant or change its settings",
        "tenants",
        Permission("tenant", "update"),
        operation_id="updateCurrentTenant",
        body=models.TenantUpdate,
        response=models.Tenant,
        errors=(404, 409),
    ),
    Route(
        "GET",
        "/api/tenants/<tenant_id>",
        get_tenant,
        "Read a tenant",
        "tenants",
        _platform("read"),
        operation_id="getTenant",
        response=models.Tenant,
        errors=(404,),
    ),
    Route(
        "PATCH",
        "/api/tenants/<tenant_id>",
        update_tenant,
        "Update a tenant (optimistic concurrency with 'version')",
        "tenants",
        _platform("update"),
        operation_id="updateTenant",
        body=models.TenantUpdate,
        response=models.Tenant,
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/api/tenants/<tenant_id>/deactivate",
        deactivate_tenant,
        "Deactivate a tenant: its keys stop working",
        "tenants",
        _platform("delete"),
        operation_id="deactivateTenant",
        response=models.Tenant,
        errors=(404, 409),
    ),
)
