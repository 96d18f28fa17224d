"""Every route of the API, in one place (the URL map and /openapi.json come from here)."""

from __future__ import annotations

from ._routes import Route

__all__ = ("all_routes",)


def all_routes() -> tuple[Route, ...]:
    from . import _health_routes, _openapi, _system_page, _system_routes, _tenant_routes

    return (
        *_health_routes.ROUTES,
        *_openapi.ROUTES,
        *_tenant_routes.ROUTES,
        *_system_routes.ROUTES,
        *_system_page.ROUTES,
    )
