"""Roles, the authorisation rule and API key verification (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from triotok._exceptions import Forbidden, InvalidConfig, Unauthenticated
from triotok.app import MODULES
from triotok.modules import ACTIONS, Grant, Permission, RoleTable, authorize
from triotok.modules.access import ApiKey, Role, hash_key, parse_key, verify_key

ROLES = RoleTable(grant for module in MODULES for grant in module.permissions)

KEY = "ttk_0123456789abcdef_" + "A" * 43


def _stored(key: str = KEY, *, revoked: bool = False) -> ApiKey:
    now = datetime.now(UTC)
    return ApiKey(
        "0123456789abcdef", "acme", Role.VIEWER, hash_key(key), now, now if revoked else None
    )


def test_roles_are_nested() -> None:
    viewer, editor, admin = (ROLES.permissions(r) for r in (Role.VIEWER, Role.EDITOR, Role.ADMIN))
    assert viewer <= editor < admin
    assert "tenant:read" in viewer


def test_permissions_are_resource_action_pairs_of_five_actions() -> None:
    assert ACTIONS == ("create", "read", "update", "delete", "admin")
    for module in MODULES:
        for grant in module.permissions:
            assert grant.permission.action in ACTIONS
    with pytest.raises(InvalidConfig, match="action"):
        Permission("tenant", "write")
    with pytest.raises(InvalidConfig, match="resource"):
        Permission("Tenant!", "read")


def test_modules_extend_the_role_table() -> None:
    extra = Grant(Permission("notes", "read"), ("viewer", "kiosk"))
    roles = RoleTable([*(g for m in MODULES for g in m.permissions), extra])
    assert roles.allows("kiosk", Permission("notes", "read"))
    assert roles.allows("viewer", Permission("notes", "read"))
    assert not roles.allows("kiosk", Permission("tenant", "read"))
    assert ROLES.permissions("kiosk") == frozenset()


@pytest.mark.parametrize(
    ("role", "key_tenant", "permission", "request_tenant", "code"),
    [
        (Role.VIEWER, "acme", Permission("tenant", "read"), "acme", None),
        (Role.VIEWER, "acme", Permission("tenant", "update"), "acme", "forbidden"),
        (Role.ADMIN, "acme", Permission("tenant", "read"), "globex", "tenant_mismatch"),
        (Role.ADMIN, "acme", Permission("tenants", "create", "platform"), None, "forbidden"),
        (Role.ADMIN, "ops", Permission("tenants", "create", "platform"), None, None),
        (Role.EDITOR, "ops", Permission("system", "read", "platform"), None, "forbidden"),
    ],
)
def test_authorize(
    role: Role,
    key_tenant: str,
    permission: Permission,
    request_tenant: str | None,
    code: str | None,
) -> None:
    def call() -> None:
        authorize(
            ROLES,
            role.value,
            key_tenant,
            permission,
            request_tenant=request_tenant,
            operator_tenant="ops",
        )

    if code is None:
        call()
    else:
        with pytest.raises(Forbidden) as info:
            call()
        assert info.value.code == code


def test_parse_key() -> None:
    assert parse_key(KEY) == "0123456789abcdef"
    for bad in ("", "ttk_", KEY + "x", KEY.replace("ttk_", "tk_"), "ttk_XYZ_" + "A" * 43):
        assert parse_key(bad) is None


def test_verify_key() -> None:
    assert verify_key(_stored(), KEY).tenant_id == "acme"
    for stored, presented in (
        (None, KEY),
        (_stored(), KEY[:-1] + "B"),
        (_stored(revoked=True), KEY),
    ):
        with pytest.raises(Unauthenticated) as info:
            verify_key(stored, presented)
        assert info.value.code == "invalid_api_key"
