"""The HTTP layer's own routes (health, OpenAPI, operators' JSON and page) as a Module.

Every other route comes from a module's declaration; the app's URL map and
``/openapi.json`` are the union, in composition order.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..modules import Grant, Module, Permission
from ._routes import Route

__all__ = ("SYSTEM", "all_routes")


def _system_routes() -> tuple[Route, ...]:
    from . import (
        _events_routes,
        _health_routes,
        _metrics,
        _openapi,
        _plugin_routes,
        _system_page,
        _system_routes,
    )

    return (
        *_health_routes.ROUTES,
        *_metrics.ROUTES,
        *_openapi.ROUTES,
        *_system_routes.ROUTES,
        *_events_routes.ROUTES,
        *_system_page.ROUTES,
        *_plugin_routes.ROUTES,
    )


#: Health, ``/openapi.json``, the operators' JSON routes and the ``/system`` page.
SYSTEM = Module(
    name="system",
    permissions=(
        Grant(Permission("system", "read", "platform"), ("admin",)),
        Grant(Permission("system", "admin", "platform"), ("admin",)),
        # A tenant sees the plugins operators enabled and switches them for itself.
        Grant(Permission("plugins", "read"), ("viewer", "editor", "admin")),
        Grant(Permission("plugins", "admin"), ("admin",)),
    ),
    routes=_system_routes,
    description="health, OpenAPI and the operators' routes",
)


def all_routes(modules: Iterable[Module]) -> tuple[Route, ...]:
    """Every route of ``modules``, in order."""
    return tuple(route for module in modules for route in module.route_table())
