"""The access module's routes: ``/api/keys`` and ``/api/tenants/<tenant_id>/keys``.

The only file of the module that imports ``triotok.http``.
"""

from __future__ import annotations

from typing import Any

from ...http import Call, Reply, Route, list_of
from .._permissions import Permission
from ._keys import ApiKeyRepository
from ._roles import Role

__all__ = ("ROUTES",)


KEY_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {"role": {"type": "string", "enum": [r.value for r in Role]}},
    "required": ["role"],
    "additionalProperties": False,
}
KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "tenant_id": {"type": "string"},
        "role": {"type": "string", "enum": [r.value for r in Role]},
        "created_at": {"type": "string", "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id", "tenant_id", "role", "created_at"],
}
NEW_KEY_SCHEMA: dict[str, Any] = {
    **KEY_SCHEMA,
    "properties": {**KEY_SCHEMA["properties"], "key": {"type": "string"}},
    "required": [*KEY_SCHEMA["required"], "key"],
}


async def _new_key(call: Call, tenant_id: str) -> Reply:
    key, plaintext = await call.services.context.get(ApiKeyRepository).create(
        tenant_id, Role(call.body["role"]), actor=call.principal
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
        status=201,
        body=KEY_REQUEST,
        response=NEW_KEY_SCHEMA,
        errors=(404,),
    ),
    Route(
        "POST",
        "/api/keys",
        create_key,
        "Create an API key for the caller's tenant (shown once)",
        "keys",
        Permission("keys", "create"),
        status=201,
        body=KEY_REQUEST,
        response=NEW_KEY_SCHEMA,
    ),
    Route(
        "GET",
        "/api/keys",
        list_keys,
        "List the caller's tenant's API keys (never the secrets)",
        "keys",
        Permission("keys", "read"),
        response=list_of(KEY_SCHEMA),
    ),
    Route(
        "DELETE",
        "/api/keys/<key_id>",
        revoke_key,
        "Revoke an API key of the caller's tenant",
        "keys",
        Permission("keys", "delete"),
        response=KEY_SCHEMA,
        errors=(404,),
    ),
)
