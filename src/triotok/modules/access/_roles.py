"""Roles and permissions: what each role may do, and the one authorisation rule.

A permission is a ``(resource, action)`` pair with a scope. ``tenant``
permissions act on the key's own tenant; ``platform`` permissions (creating
tenants, operating the actor tree) are granted by the admin role of the
*operator tenant* only, so no customer's admin can touch another tenant or
the shared runtime.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from ..._exceptions import RequestError

__all__ = ("ROLE_PERMISSIONS", "Permission", "Role", "authorize")


class Role(enum.StrEnum):
    """What a key may do inside its tenant."""

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Permission:
    """``resource``/``action`` with a ``scope``: ``tenant`` or ``platform``."""

    resource: str
    action: str
    scope: Literal["tenant", "platform"] = "tenant"

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


_VIEWER = frozenset({("tenant", "read"), ("content", "read")})
_EDITOR = _VIEWER | {("content", "write")}
_ADMIN = _EDITOR | {
    ("tenant", "update"),
    ("key", "create"),
    ("key", "read"),
    ("key", "revoke"),
    ("audit", "read"),
    # platform scope: effective only for keys of the operator tenant
    ("tenants", "create"),
    ("tenants", "read"),
    ("tenants", "update"),
    ("tenants", "deactivate"),
    ("tenants", "keys"),
    ("system", "read"),
    ("system", "write"),
}

#: Each role's ``(resource, action)`` pairs.
ROLE_PERMISSIONS: dict[Role, frozenset[tuple[str, str]]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: _EDITOR,
    Role.ADMIN: _ADMIN,
}


def authorize(
    role: Role,
    key_tenant: str,
    permission: Permission,
    *,
    request_tenant: str | None,
    operator_tenant: str,
) -> None:
    """Raise a 403 problem unless a key (``role`` of ``key_tenant``) may use ``permission``.

    Checked in this order, so a key of another tenant learns nothing about the
    requested tenant: tenant mismatch, then the operator rule, then the role.
    """
    if permission.scope == "tenant" and request_tenant != key_tenant:
        raise RequestError(
            "this API key belongs to another tenant", status=403, code="tenant_mismatch"
        )
    if permission.scope == "platform" and key_tenant != operator_tenant:
        raise RequestError(
            f"{permission} needs a key of the operator tenant", status=403, code="forbidden"
        )
    if (permission.resource, permission.action) not in ROLE_PERMISSIONS[role]:
        raise RequestError(
            f"role {role.value!r} lacks permission {permission}", status=403, code="forbidden"
        )
