"""docs/reference/http-api.md's route table and role table are the code's, row for row.

To refresh them after changing routes or grants::

    TRIOTOK_UPDATE_DOCS=1 .venv/bin/pytest tests/test_http_reference.py
"""

from __future__ import annotations

import os

from tests.docs import DOCS
from triotok.app import role_table as app_roles
from triotok.app import route_table as app_routes
from triotok.http import Route
from triotok.modules import Permission

REFERENCE = DOCS / "reference" / "http-api.md"
_ROUTES_START = (
    "| Method | Path | Operation | Permission | Mode gate | Success | Errors | Summary |\n"
    "|---|---|---|---|---|---|---|---|\n"
)
_ROLES_START = "| Role | Permissions |\n|---|---|\n"


def _permission(route: Route) -> str:
    if route.permission is None:
        return "public"
    return f"`{route.permission}` ({route.permission.scope})"


def _gate(route: Route) -> str:
    """How the service mode treats the route (docs/reference/degradation.md)."""
    if route.control:
        return "control"
    kind = f"{route.criticality} {'write' if route.writes else 'read'}"
    return kind + (", stale ok" if route.serve_stale else "")


def route_table() -> str:
    rows = [
        f"| {r.method} | `{r.openapi_path}` | `{r.operation_id}` | {_permission(r)} | {_gate(r)} | "
        f"{r.status} | "
        f"{', '.join(map(str, r.all_errors()))} | {r.summary} |\n"
        for r in app_routes()
    ]
    return "".join(rows)


def role_table() -> str:
    roles = app_roles()

    def shown(role: str, name: str) -> str:
        resource, action = name.split(":")
        restricted = roles.restricted(role, Permission(resource, action))
        return f"`{name}`" + (" (restricted)" if restricted else "")

    return "".join(
        f"| {role} | {', '.join(shown(role, p) for p in sorted(roles.permissions(role)))} |\n"
        for role in ("viewer", "editor", "admin", "storefront")
    )


def _replace(text: str, start: str, body: str) -> str:
    begin = text.index(start) + len(start)
    end = text.index("\n\n", begin) + 1
    return text[:begin] + body + text[end:]


def _current(text: str, start: str) -> str:
    begin = text.index(start) + len(start)
    return text[begin : text.index("\n\n", begin) + 1]


def test_the_reference_tables_are_generated_from_the_modules() -> None:
    text = REFERENCE.read_text()
    if os.environ.get("TRIOTOK_UPDATE_DOCS") == "1":
        text = _replace(text, _ROUTES_START, route_table())
        text = _replace(text, _ROLES_START, role_table())
        REFERENCE.write_text(text)
    assert _current(text, _ROUTES_START) == route_table()
    assert _current(text, _ROLES_START) == role_table()
