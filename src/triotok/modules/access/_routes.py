"""The access module's routes: ``/api/keys`` and ``/api/tenants/<tenant_id>/keys``.

The only file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from ...http import Call, Reply, Route
from .._permissions import Permission
from . import _models as models
from ._keys import ApiKeyRepository

__all__ = ("ROUTES",)


async def _new_key(call: Call, tenant_id: str) -> Reply:
    body: models.KeyRequest = call.body
    key, plaintext = await call.services.context.get(ApiKeyRepository).create(
        tenant_id, body.role, actor=call.principal
    )
    return Reply({**key.as_dict(), "key": plaintext}, 201)


async def create_key(call: Call) -> Reply:
    assert call.tenant is not None
    return await _new_key(call, call.tenant.id)


async def list_keys(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    keys = await call.services.context.get(ApiKeyRepository).list(call.tenant.id)
    return {"items": [k.as_dict() for k in keys]}


async def revoke_key(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    key_id = call.params["key_id"]
    key = await call.services.context.get(ApiKeyRepository).revoke(
        call.tenant.id, key_id, actor=call.principal, trace_id=call.traceparent
    )
    call.services.keys.invalidate(key_id)
    return key.as_dict()


async def create_tenant_key(call: Call) -> Reply:
    return await _new_key(call, call.params["tenant_id"])


ROUTES = (
    Route(
        "POST",
        "/api/tenants/<tenant_id>/keys",
        create_tenant_key,
        "Create an API key for a tenant (the key is shown once)",
        "keys",
        Permission("keys", "admin", "platform"),
        operation_id="createTenantKey",
        status=201,
        body=models.KeyRequest,
        response=models.NewApiKey,
        errors=(404,),
    ),
    Route(
        "POST",
        "/api/keys",
        create_key,
        "Create an API key for the caller's tenant (shown once)",
        "keys",
        Permission("keys", "create"),
        operation_id="createKey",
        status=201,
        body=models.KeyRequest,
        response=models.NewApiKey,
    ),
    Route(
        "GET",
        "/api/keys",
        list_keys,
        "List the caller's tenant's API keys (never the secrets)",
        "keys",
        Permission("keys", "read"),
        operation_id="listKeys",
        response=models.ApiKeyList,
    ),
    Route(
        "DELETE",
        "/api/keys/<key_id>",
        revoke_key,
        "Revoke an API key of the caller's tenant",
        "keys",
        Permission("keys", "delete"),
        operation_id="revokeKey",
        response=models.ApiKey,
        errors=(404,),
    ),
)
