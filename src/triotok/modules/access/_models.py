"""The access module's HTTP models: API keys as ``/api/keys`` reads and answers them.

Published in ``/openapi.json`` as the components ``ApiKey``, ``NewApiKey``,
``ApiKeyList``, ``KeyRequest`` and ``Role``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from msgspec import Struct

from ._roles import Role

__all__ = ("ApiKey", "ApiKeyList", "KeyRequest", "NewApiKey")

_KEY: dict[str, Any] = {
    "id": "0123456789abcdef",
    "tenant_id": "acme",
    "role": "editor",
    "created_at": "2024-05-01T12:00:00+00:00",
    "revoked_at": None,
}


class KeyRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A new API key: the role it acts with."""

    role: Role

    EXAMPLE: ClassVar[dict[str, Any]] = {"role": "editor"}


class ApiKey(Struct, frozen=True):
    """An API key (never its secret); ``revoked_at`` is set once it is revoked."""

    id: str
    tenant_id: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    EXAMPLE: ClassVar[dict[str, Any]] = _KEY


class NewApiKey(ApiKey, frozen=True):
    """A key just created, with its secret ``key``: shown this once, never again."""

    key: str

    EXAMPLE: ClassVar[dict[str, Any]] = {
        **_KEY,
        "key": "ttk_0123456789abcdef_c2VjcmV0LXNob3duLW9uY2U",
    }


class ApiKeyList(Struct, frozen=True):
    """A tenant's API keys."""

    items: list[ApiKey]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_KEY]}
