"""Roles, the authorisation rule and API key verification (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from triotok._exceptions import RequestError
from triotok.modules.access import (
    ROLE_PERMISSIONS,
    ApiKey,
    Permission,
    Role,
    authorize,
    hash_key,
    parse_key,
    verify_key,
)

KEY = "ttk_0123456789abcdef_" + "A" * 43


def _stored(key: str = KEY, *, revoked: bool = False) -> ApiKey:
    now = datetime.now(UTC)
    return ApiKey(
        "0123456789abcdef", "acme", Role.VIEWER, hash_key(key), now, now if revoked else None
    )


def test_roles_are_nested() -> None:
    assert (
        ROLE_PERMISSIONS[Role.VIEWER] < ROLE_PERMISSIONS[Role.EDITOR] < ROLE_PERMISSIONS[Role.ADMIN]
    )


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
            role, key_tenant, permission, request_tenant=request_tenant, operator_tenant="ops"
        )

    if code is None:
        call()
    else:
        with pytest.raises(RequestError) as info:
            call()
        assert info.value.status == 403
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
        with pytest.raises(RequestError) as info:
            verify_key(stored, presented)
        assert info.value.status == 401
