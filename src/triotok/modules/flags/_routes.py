"""``/system/flags`` (operators define flags) and ``/api/flags`` (tenant admins see, choose).

Every change is audited and emits a ``flag.*`` event through the outbox, so
every node's flag cache reloads it; the node that answered applies it at
once. The only file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from ..._exceptions import Forbidden, NotFound
from ...http import Call, Reply, Route
from .._commands import Who
from .._flags import FLAG_NAME, Flag, check_flag_name
from .._permissions import Permission
from . import _models as models
from ._repository import FlagRepository

__all__ = ("ROUTES",)

_REPOSITORY = FlagRepository()


def _who(call: Call) -> Who:
    return Who(call.principal, call.traceparent)


def _name(call: Call) -> str:
    return check_flag_name(call.params["flag_name"])


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


def _operator_tenant(call: Call) -> str:
    assert call.key is not None
    return call.key.tenant_id


# ---------------------------------------------------------------- operators


async def list_flags(call: Call) -> dict[str, Any]:
    flags, _ = await _REPOSITORY.all(call.services.store.store)
    return {"items": [flag.as_dict() for flag in sorted(flags, key=lambda f: f.name)]}


async def put_flag(call: Call) -> Reply:
    body: models.FlagDefinition = call.body
    flag = Flag(
        name=_name(call),
        enabled=body.enabled,
        rollout=body.rollout,
        allow=frozenset(body.allow),
        deny=frozenset(body.deny),
        by=body.by,
        tenant_editable=body.tenant_editable,
        description=body.description,
    )
    stored, _ = await _REPOSITORY.put(
        call.services.store.store, flag, _who(call), _operator_tenant(call)
    )
    call.services.context.flags.put(stored)
    return Reply(stored.as_dict())


async def delete_flag(call: Call) -> Reply:
    name = _name(call)
    deleted = await _REPOSITORY.delete(
        call.services.store.store, name, _who(call), _operator_tenant(call)
    )
    if not deleted:
        raise NotFound(f"no flag {name!r}")
    call.services.context.flags.remove(name)
    return Reply(b"", 204, content_type="application/json")


# ---------------------------------------------------------------- a tenant's view


def _tenant_flag(call: Call, name: str) -> dict[str, Any]:
    flags = call.services.context.flags
    tenant = _tenant(call)
    flag = flags.get(name)
    assert flag is not None
    verdict = flags.evaluate(name, tenant=tenant, key=call.key.id if call.key else None)
    return {
        "name": name,
        "description": flag.description,
        "enabled": verdict.value,
        "reason": verdict.reason,
        "tenant_editable": flag.tenant_editable,
        "tenant_value": flags.tenant_value(name, tenant) if flag.tenant_editable else None,
    }


async def list_tenant_flags(call: Call) -> dict[str, Any]:
    names = call.services.context.flags.names()
    return {"items": [_tenant_flag(call, name) for name in names]}


async def _editable(call: Call) -> str:
    name = _name(call)
    flag = call.services.context.flags.get(name)
    if flag is None:
        raise NotFound(f"no flag {name!r}")
    if not flag.tenant_editable:
        raise Forbidden(
            f"flag {name!r} is set by the operators, not per tenant", code="flag_not_editable"
        )
    return name


async def set_tenant_flag(call: Call) -> dict[str, Any]:
    body: models.TenantFlagChoice = call.body
    name = await _editable(call)
    tenant = _tenant(call)
    await _REPOSITORY.set_tenant_value(
        call.services.store.store, name, tenant, body.enabled, _who(call)
    )
    call.services.context.flags.put_tenant_value(name, tenant, body.enabled)
    return _tenant_flag(call, name)


async def clear_tenant_flag(call: Call) -> dict[str, Any]:
    name = await _editable(call)
    tenant = _tenant(call)
    await _REPOSITORY.set_tenant_value(call.services.store.store, name, tenant, None, _who(call))
    call.services.context.flags.put_tenant_value(name, tenant, None)
    return _tenant_flag(call, name)


# ---------------------------------------------------------------- the table

_FLAG_PATH = "<flag_name>"
_NAME_SCHEMA = {"flag_name": {"type": "string", "pattern": f"^{FLAG_NAME.pattern}$"}}
_READ = Permission("system", "read", "platform")
_ADMIN = Permission("system", "admin", "platform")

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/system/flags",
        list_flags,
        "Every feature flag and its rules",
        "flags",
        _READ,
        operation_id="listFlags",
        response=models.FlagList,
    ),
    Route(
        "PUT",
        f"/system/flags/{_FLAG_PATH}",
        put_flag,
        "Create or replace a feature flag (on/off, rollout percentage, allow/deny lists)",
        "flags",
        _ADMIN,
        operation_id="putFlag",
        path_schemas=_NAME_SCHEMA,
        body=models.FlagDefinition,
        response=models.FlagView,
    ),
    Route(
        "DELETE",
        f"/system/flags/{_FLAG_PATH}",
        delete_flag,
        "Delete a feature flag (and every tenant's own value of it)",
        "flags",
        _ADMIN,
        operation_id="deleteFlag",
        status=204,
        path_schemas=_NAME_SCHEMA,
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/api/flags",
        list_tenant_flags,
        "Every feature flag as the caller's tenant sees it, and why",
        "flags",
        Permission("flags", "read"),
        operation_id="listTenantFlags",
        response=models.TenantFlagList,
    ),
    Route(
        "PUT",
        f"/api/flags/{_FLAG_PATH}",
        set_tenant_flag,
        "Turn a tenant-editable flag on or off for the caller's tenant",
        "flags",
        Permission("flags", "update"),
        operation_id="setTenantFlag",
        path_schemas=_NAME_SCHEMA,
        body=models.TenantFlagChoice,
        response=models.TenantFlag,
        errors=(403, 404),
    ),
    Route(
        "DELETE",
        f"/api/flags/{_FLAG_PATH}",
        clear_tenant_flag,
        "Clear the caller's tenant's own value: the operators' rules decide again",
        "flags",
        Permission("flags", "update"),
        operation_id="clearTenantFlag",
        path_schemas=_NAME_SCHEMA,
        response=models.TenantFlag,
        errors=(403, 404),
    ),
)
