"""Permissions and roles: ``resource:action`` pairs, roles as sets of them, one rule.

A permission is a ``resource`` and one of five ``actions`` (``create``,
``read``, ``update``, ``delete``, ``admin``) with a ``scope``: ``tenant``
permissions act on the key's own tenant; ``platform`` permissions (creating
tenants, operating the actor tree) are granted by the admin role of the
*operator tenant* only, so no customer's admin can touch another tenant or
the shared runtime. Modules declare the permissions they define and which
roles get them (:class:`~triotok.modules.Grant`); the application's
:class:`RoleTable` is the union of those grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._exceptions import Forbidden, InvalidConfig

if TYPE_CHECKING:
    from ._module import Grant

__all__ = ("ACTIONS", "Permission", "RoleTable", "authorize")

#: The actions a permission may name (the seeds' model).
ACTIONS = ("create", "read", "update", "delete", "admin")

_RESOURCE = re.compile(r"[a-z][a-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True)
class Permission:
    """``resource:action`` with a ``scope``: ``tenant`` or ``platform``."""

    resource: str
    action: str
    scope: Literal["tenant", "platform"] = "tenant"

    def __post_init__(self) -> None:
        if not _RESOURCE.fullmatch(self.resource):
            raise InvalidConfig("resource", f"{self.resource!r} must match {_RESOURCE.pattern}")
        if self.action not in ACTIONS:
            raise InvalidConfig("action", f"{self.action!r} is not one of {', '.join(ACTIONS)}")

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


class RoleTable:
    """Which ``resource:action`` pairs each role has: the union of the modules' grants."""

    __slots__ = ("_restricted", "_roles")

    def __init__(self, grants: Iterable[Grant] = ()) -> None:
        roles: dict[str, set[tuple[str, str]]] = {}
        restricted: dict[str, set[tuple[str, str]]] = {}
        full: dict[str, set[tuple[str, str]]] = {}
        for grant in grants:
            pair = (grant.permission.resource, grant.permission.action)
            for role in grant.roles:
                roles.setdefault(role, set()).add(pair)
                (restricted if grant.restricted else full).setdefault(role, set()).add(pair)
        # Pairs, not "resource:action" strings: the check runs on every request.
        self._roles: Mapping[str, frozenset[tuple[str, str]]] = {
            role: frozenset(pairs) for role, pairs in roles.items()
        }
        # Restricted unless some grant gives the role the pair unrestricted.
        self._restricted: Mapping[str, frozenset[tuple[str, str]]] = {
            role: frozenset(pairs - full.get(role, set())) for role, pairs in restricted.items()
        }

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(self._roles))

    def permissions(self, role: str) -> frozenset[str]:
        """``role``'s permissions as ``"resource:action"`` strings (empty if unknown)."""
        return frozenset(f"{r}:{a}" for r, a in self._roles.get(role, _NONE))

    def allows(self, role: str, permission: Permission) -> bool:
        return (permission.resource, permission.action) in self._roles.get(role, _NONE)

    def restricted(self, role: str, permission: Permission) -> bool:
        """Whether ``role`` has ``permission`` only over its restricted subset."""
        return (permission.resource, permission.action) in self._restricted.get(role, _NONE)

    def as_dict(self) -> dict[str, list[str]]:
        return {role: sorted(self.permissions(role)) for role in sorted(self._roles)}


_NONE: frozenset[tuple[str, str]] = frozenset()


def authorize(
    roles: RoleTable,
    role: str,
    key_tenant: str,
    permission: Permission,
    *,
    request_tenant: str | None,
    operator_tenant: str,
) -> None:
    """Raise :class:`Forbidden` unless a key (``role`` of ``key_tenant``) may use ``permission``.

    Checked in this order, so a key of another tenant learns nothing about the
    requested tenant: tenant mismatch, then the operator rule, then the role.
    """
    if permission.scope == "tenant" and request_tenant != key_tenant:
        raise Forbidden("this API key belongs to another tenant", code="tenant_mismatch")
    if permission.scope == "platform" and key_tenant != operator_tenant:
        raise Forbidden(f"{permission} needs a key of the operator tenant")
    if not roles.allows(role, permission):
        raise Forbidden(f"role {role!r} lacks permission {permission}")
