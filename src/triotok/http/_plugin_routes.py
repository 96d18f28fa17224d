"""The plugins over HTTP: operators' ``/system/plugins``, tenants' switches, plugins' endpoints.

* ``GET /system/plugins`` and ``POST /system/plugins/{name}/enable|disable|restart``
  need an admin key of the operator tenant (``system:read`` / ``system:admin``);
  each change is persisted and audited by the manager.
* ``GET /api/tenant-plugins`` and ``PUT /api/tenant-plugins/{name}``: a tenant
  sees the plugins operators enabled and switches them on or off for itself
  (``plugins:read`` / ``plugins:admin``).
* Every plugin's :class:`~triotok.plugins.Endpoint` is a route
  ``/api/plugins/<name>/...`` with the permission ``plugin.<name>:<action>``,
  through the same pipeline (key, tenant, role) as any route; its call goes
  to the plugin's run (breaker, deadline, and its process when isolated).
"""

from __future__ import annotations

import weakref
from typing import Any

from msgspec import UNSET

from .._exceptions import RequestError
from ..modules import Permission
from ..plugins import (
    Capabilities,
    Endpoint,
    PluginCrashed,
    PluginManager,
    PluginNotFound,
    PluginRefused,
    PluginRequest,
    PluginTimeout,
    PluginUnavailable,
    endpoint_path,
)
from . import _plugin_models as models
from ._routes import Call, Reply, Route

__all__ = ("ROUTES", "plugin_routes")

#: Headers a plugin may not set on its answers (the platform's own, or unsafe ones).
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "set-cookie",
        "content-security-policy",
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "x-request-id",
        "access-control-allow-origin",
    }
)


def _manager(call: Call) -> PluginManager:
    manager = call.services.plugins
    if not isinstance(manager, PluginManager):
        raise RequestError("this application runs no plugins", status=404, code="plugin_not_found")
    return manager


def _translate(exc: Exception) -> RequestError:
    if isinstance(exc, PluginNotFound):
        return RequestError(str(exc), status=404, code=exc.code)
    if isinstance(exc, PluginRefused):
        return RequestError(exc.message, status=409, code=exc.code)
    if isinstance(exc, PluginUnavailable):
        return RequestError(exc.message, status=409, code=exc.code)
    raise exc


def _view(manager: PluginManager, name: str) -> dict[str, Any]:
    return manager.status(name).as_dict()


def _who(call: Call) -> tuple[str, str | None]:
    return call.principal, call.key.tenant_id if call.key is not None else None


# ---------------------------------------------------------------- operators


async def list_plugins(call: Call) -> dict[str, Any]:
    return {"items": [status.as_dict() for status in _manager(call).list()]}


async def enable_plugin(call: Call) -> dict[str, Any]:
    manager = _manager(call)
    body: models.EnableRequest | None = call.body
    grants = None
    if body is not None and body.grants is not UNSET:
        given = body.grants
        grants = Capabilities(
            subscribe=tuple(given.subscribe),
            publish=tuple(given.publish),
            routes=given.routes,
            hosts=tuple(given.hosts),
            storage=given.storage,
        )
    who, tenant = _who(call)
    try:
        await manager.enable(call.params["name"], grants, who=who, audit_tenant=tenant)
    except (PluginNotFound, PluginRefused, PluginUnavailable) as exc:
        raise _translate(exc) from None
    return _view(manager, call.params["name"])


async def disable_plugin(call: Call) -> dict[str, Any]:
    manager = _manager(call)
    who, tenant = _who(call)
    try:
        await manager.disable(call.params["name"], who=who, audit_tenant=tenant)
    except (PluginNotFound, PluginRefused, PluginUnavailable) as exc:
        raise _translate(exc) from None
    return _view(manager, call.params["name"])


async def restart_plugin(call: Call) -> dict[str, Any]:
    manager = _manager(call)
    who, tenant = _who(call)
    try:
        await manager.restart(call.params["name"], who=who, audit_tenant=tenant)
    except (PluginNotFound, PluginRefused, PluginUnavailable) as exc:
        raise _translate(exc) from None
    return _view(manager, call.params["name"])


# ---------------------------------------------------------------- tenants


def _tenant_view(manager: PluginManager, tenant: str, name: str) -> dict[str, Any]:
    status = manager.status(name)
    return {
        "name": status.name,
        "description": status.description,
        "version": status.version,
        "state": status.state.value,
        "enabled": manager.switched_on(name, tenant),
        "endpoints": list(status.endpoints),
    }


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


async def list_tenant_plugins(call: Call) -> dict[str, Any]:
    manager, tenant = _manager(call), _tenant(call)
    return {"items": [_tenant_view(manager, tenant, s.name) for s in manager.available()]}


async def switch_tenant_plugin(call: Call) -> dict[str, Any]:
    manager, tenant, name = _manager(call), _tenant(call), call.params["name"]
    body: models.SwitchRequest = call.body
    try:
        status = manager.status(name)
        if status.grants is None and body.enabled:
            raise PluginUnavailable(name, "an operator has not enabled it")
        await manager.switch(name, tenant, body.enabled, who=call.principal)
    except (PluginNotFound, PluginRefused, PluginUnavailable) as exc:
        raise _translate(exc) from None
    return _tenant_view(manager, tenant, name)


# ---------------------------------------------------------------- plugins' endpoints


def _camel(text: str) -> str:
    return "".join(
        part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-") if part
    )


def _endpoint_route(name: str, endpoint: Endpoint) -> Route:
    async def handler(call: Call) -> Reply:
        manager = _manager(call)
        tenant = _tenant(call)
        if not manager.switched_on(name, tenant):
            raise RequestError(
                f"plugin {name!r} is switched off for this tenant", status=409, code="plugin_off"
            )
        try:
            run = manager.run(name)
        except PluginUnavailable as exc:
            raise RequestError(exc.message, status=503, code=exc.code) from None
        assert call.key is not None
        request = PluginRequest(
            method=endpoint.method,
            path=endpoint.path,
            params={k: str(v) for k, v in call.params.items()},
            query=call.query,
            body=call.body,
            tenant=tenant,
            principal=call.principal,
            role=call.key.role.value,
            request_id=call.request_id,
        )
        try:
            response = await run.request(endpoint.key, request)
        except (PluginTimeout, PluginUnavailable, PluginCrashed) as exc:
            # The plugin failed, not the platform: 503, and the breaker counts it.
            raise RequestError(exc.message, status=503, code=exc.code) from None
        headers = {
            str(k): str(v)
            for k, v in response.headers.items()
            if str(k).lower() not in _RESERVED_HEADERS and "\n" not in str(v) and "\r" not in str(v)
        }
        if response.status == 204:
            return Reply(b"", 204, headers)
        return Reply(response.body, response.status, headers)

    operation = endpoint.operation_id or _camel(endpoint.handler.__name__)
    handler.__name__ = f"plugin_{name}_{operation}".replace("-", "_")
    return Route(
        endpoint.method,
        endpoint_path(name, endpoint),
        handler,
        endpoint.summary,
        f"plugin {name}",
        Permission(f"plugin.{name}", endpoint.action),
        status=endpoint.status,
        body=endpoint.body,
        query=endpoint.query,
        response=endpoint.response,
        errors=tuple(sorted({409, 503, *endpoint.errors})),
        operation_id=f"plugin{_camel(name)}{operation[:1].upper()}{operation[1:]}",
        criticality="optional",  # a degraded node sheds plugins first
    )


_CACHE: weakref.WeakKeyDictionary[PluginManager, tuple[Route, ...]] = weakref.WeakKeyDictionary()


def plugin_routes(manager: Any) -> tuple[Route, ...]:
    """The routes of every discovered plugin's endpoints (built once per manager)."""
    if not isinstance(manager, PluginManager):
        return ()
    routes = _CACHE.get(manager)
    if routes is None:
        routes = tuple(_endpoint_route(name, e) for name, e in manager.endpoints())
        _CACHE[manager] = routes
    return routes


# ---------------------------------------------------------------- the table

_NAME = {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,63}$"}}
_READ = Permission("system", "read", "platform")
_ADMIN = Permission("system", "admin", "platform")


def _operator(verb: str, handler: Any, summary: str) -> Route:
    return Route(
        "POST",
        f"/system/plugins/<name>/{verb}",
        handler,
        summary,
        "system",
        _ADMIN,
        operation_id=f"{verb}Plugin",
        body=models.EnableRequest if verb == "enable" else None,
        path_schemas=_NAME,
        response=models.PluginView,
        errors=(404, 409),
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/system/plugins",
        list_plugins,
        "Every discovered plugin: state (failed ones with the reason), grants, subtree, counters",
        "system",
        _READ,
        operation_id="listPlugins",
        response=models.PluginList,
    ),
    _operator(
        "enable", enable_plugin, "Enable a plugin, granting capabilities (persisted, audited)"
    ),
    _operator(
        "disable", disable_plugin, "Disable a plugin: its subtree stops (persisted, audited)"
    ),
    _operator(
        "restart", restart_plugin, "Restart an enabled or failed plugin from a fresh instance"
    ),
    Route(
        "GET",
        "/api/tenant-plugins",
        list_tenant_plugins,
        "The plugins operators enabled, and whether this tenant switched each on",
        "plugins",
        Permission("plugins", "read"),
        operation_id="listTenantPlugins",
        response=models.TenantPluginList,
    ),
    Route(
        "PUT",
        "/api/tenant-plugins/<name>",
        switch_tenant_plugin,
        "Switch a plugin on or off for this tenant (audited)",
        "plugins",
        Permission("plugins", "admin"),
        operation_id="switchTenantPlugin",
        body=models.SwitchRequest,
        path_schemas=_NAME,
        response=models.TenantPlugin,
        errors=(404, 409),
    ),
)
