"""``/api/tenants``, ``/api/keys`` and ``/api/audit``.

Platform routes (creating and managing any tenant) need an admin key of the
operator tenant; tenant routes act on the caller's own tenant (``X-Tenant``,
which must be the key's tenant).
"""

from __future__ import annotations

from typing import Any

from .._exceptions import NotFound, RequestError
from .._text import NAME_PATTERN
from ..modules.access import Permission, Role
from ..modules.audit import list_entries
from ..modules.tenants import TENANT_ID_PATTERN, Tenant
from ._routes import Call, Reply, Route, json_bytes

__all__ = ("ROUTES",)

#: Path segments that cannot be tenant ids because they name routes.
RESERVED_IDS = frozenset({"current"})

#: Anchored: a JSON Schema ``pattern`` matches anywhere in the string (ECMA-262 search),
#: while the server accepts only whole ids.
TENANT_ID_SCHEMA_PATTERN = f"^{TENANT_ID_PATTERN}$"

TENANT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": TENANT_ID_SCHEMA_PATTERN},
        "name": {"type": "string"},
        "active": {"type": "boolean"},
        "settings": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "version": {"type": "integer"},
    },
    "required": ["id", "name", "active", "settings", "created_at", "updated_at", "version"],
}
# No control or format characters (bidi overrides, zero-width spaces): see triotok._text.
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NAME_PATTERN}
_SETTINGS = {"type": "object", "maxProperties": 100}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": TENANT_ID_SCHEMA_PATTERN},
        "name": _NAME,
        "settings": _SETTINGS,
    },
    "required": ["id", "name"],
    "additionalProperties": False,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "settings": _SETTINGS,
        "version": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    },
    "additionalProperties": False,
}
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
_PAGE: dict[str, dict[str, Any]] = {
    "after": {"type": "string", "pattern": TENANT_ID_SCHEMA_PATTERN},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
    }


# ---------------------------------------------------------------- platform (operator admins)


async def create_tenant(call: Call) -> Reply:
    body = call.body
    if body["id"] in RESERVED_IDS:
        raise RequestError(f"{body['id']!r} is reserved", status=400, code="invalid_tenant_id")
    tenant = await call.services.tenant_repository.create(
        body["id"],
        body["name"],
        body.get("settings"),
        actor=call.principal,
        trace_id=call.traceparent,
    )
    # A negative entry from an earlier probe must not hide the new tenant.
    call.services.tenants.invalidate(tenant.id)
    return Reply(tenant.as_dict(), 201, {"Location": f"/api/tenants/{tenant.id}"})


async def list_tenants(call: Call) -> dict[str, Any]:
    tenants = await call.services.tenant_repository.list(
        after=call.query.get("after", ""), limit=int(call.query.get("limit", 100))
    )
    return {"items": [t.as_dict() for t in tenants]}


async def get_tenant(call: Call) -> dict[str, Any]:
    tenant = await call.services.tenants.get(call.params["tenant_id"])
    if tenant is None:
        raise NotFound(f"no tenant {call.params['tenant_id']!r}")
    return tenant.as_dict()


async def _update(call: Call, tenant_id: str) -> dict[str, Any]:
    body = call.body
    tenant = await call.services.tenant_repository.update(
        tenant_id,
        name=body.get("name"),
        settings=body.get("settings"),
        expected_version=body.get("version"),
        actor=call.principal,
        trace_id=call.traceparent,
    )
    call.services.tenants.invalidate(tenant_id)  # this node at once; others via the event
    return tenant.as_dict()


async def update_tenant(call: Call) -> dict[str, Any]:
    return await _update(call, call.params["tenant_id"])


async def deactivate_tenant(call: Call) -> dict[str, Any]:
    tenant_id = call.params["tenant_id"]
    if tenant_id == call.services.options.operator_tenant:
        raise RequestError("the operator tenant cannot be deactivated", status=409, code="conflict")
    tenant = await call.services.tenant_repository.deactivate(
        tenant_id, actor=call.principal, trace_id=call.traceparent
    )
    call.services.tenants.invalidate(tenant_id)
    return tenant.as_dict()


async def create_tenant_key(call: Call) -> Reply:
    return await _new_key(call, call.params["tenant_id"])


# ---------------------------------------------------------------- the caller's own tenant


# The JSON of cached tenants, by (id, version): the hot read serves bytes.
_TENANT_JSON: dict[tuple[str, int], bytes] = {}


def _tenant_json(tenant: Tenant) -> bytes:
    key = (tenant.id, tenant.version)
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


async def _new_key(call: Call, tenant_id: str) -> Reply:
    key, plaintext = await call.services.key_repository.create(
        tenant_id, Role(call.body["role"]), actor=call.principal
    )
    return Reply({**key.as_dict(), "key": plaintext}, 201)


async def create_key(call: Call) -> Reply:
    assert call.tenant is not None
    return await _new_key(call, call.tenant.id)


async def list_keys(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    keys = await call.services.key_repository.list(call.tenant.id)
    return {"items": [k.as_dict() for k in keys]}


async def revoke_key(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    key_id = call.params["key_id"]
    key = await call.services.key_repository.revoke(
        call.tenant.id, key_id, actor=call.principal, trace_id=call.traceparent
    )
    call.services.keys.invalidate(key_id)
    return key.as_dict()


async def audit_log(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    entries = await list_entries(
        call.services.store.store, call.tenant.id, limit=int(call.query.get("limit", 100))
    )
    return {"items": [e.as_dict() for e in entries]}


_AUDIT_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "resource": {"type": "string"},
        "tenant_id": {"type": ["string", "null"]},
        "at": {"type": "string", "format": "date-time"},
        "detail": {"type": "object"},
    },
    "required": ["id", "actor", "action", "resource", "at"],
}


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
        status=201,
        body=CREATE_SCHEMA,
        response=TENANT_SCHEMA,
        errors=(409,),
    ),
    Route(
        "GET",
        "/api/tenants",
        list_tenants,
        "List tenants (keyset pagination by id)",
        "tenants",
        _platform("read"),
        query=_PAGE,
        response=_list_of(TENANT_SCHEMA),
    ),
    Route(
        "GET",
        "/api/tenants/current",
        current_tenant,
        "The caller's tenant",
        "tenants",
        Permission("tenant", "read"),
        response=TENANT_SCHEMA,
        errors=(404,),
    ),
    Route(
        "PATCH",
        "/api/tenants/current",
        update_current,
        "Rename the caller's tenant or change its settings",
        "tenants",
        Permission("tenant", "update"),
        body=UPDATE_SCHEMA,
        response=TENANT_SCHEMA,
        errors=(404, 409),
    ),
    Route(
        "GET",
        "/api/tenants/<tenant_id>",
        get_tenant,
        "Read a tenant",
        "tenants",
        _platform("read"),
        response=TENANT_SCHEMA,
        errors=(404,),
    ),
    Route(
        "PATCH",
        "/api/tenants/<tenant_id>",
        update_tenant,
        "Update a tenant (optimistic concurrency with 'version')",
        "tenants",
        _platform("update"),
        body=UPDATE_SCHEMA,
        response=TENANT_SCHEMA,
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/api/tenants/<tenant_id>/deactivate",
        deactivate_tenant,
        "Deactivate a tenant: its keys stop working",
        "tenants",
        _platform("deactivate"),
        response=TENANT_SCHEMA,
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/api/tenants/<tenant_id>/keys",
        create_tenant_key,
        "Create an API key for a tenant (the key is shown once)",
        "keys",
        _platform("keys"),
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
        Permission("key", "create"),
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
        Permission("key", "read"),
        response=_list_of(KEY_SCHEMA),
    ),
    Route(
        "DELETE",
        "/api/keys/<key_id>",
        revoke_key,
        "Revoke an API key of the caller's tenant",
        "keys",
        Permission("key", "revoke"),
        response=KEY_SCHEMA,
        errors=(404,),
    ),
    Route(
        "GET",
        "/api/audit",
        audit_log,
        "The caller's tenant's audit log, newest first",
        "audit",
        Permission("audit", "read"),
        query={"limit": {"type": "integer", "minimum": 1, "maximum": 500}},
        response=_list_of(_AUDIT_ENTRY),
    ),
)
