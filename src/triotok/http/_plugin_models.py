"""Models of the plugin routes: ``/system/plugins`` (operators), ``/api/tenant-plugins``."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from .._text import whole_match
from ..plugins import EVENT_PATTERN, HOST_PATTERN, NAMESPACE_PATTERN

__all__ = (
    "EnableRequest",
    "GrantBody",
    "PluginList",
    "PluginView",
    "SwitchRequest",
    "TenantPlugin",
    "TenantPluginList",
)

# The plugin API's own rules (triotok.plugins), so a schema-valid grant is a valid grant.
Pattern = Annotated[str, Meta(pattern=whole_match(EVENT_PATTERN), max_length=200)]
Host = Annotated[str, Meta(pattern=whole_match(HOST_PATTERN), max_length=253)]
State = Literal["discovered", "enabled", "running", "failed", "disabled"]

_EXAMPLE_GRANT: dict[str, Any] = {
    "subscribe": ["content.node.*"],
    "publish": ["seo.suggested"],
    "routes": True,
    "hosts": [],
    "storage": "seo",
}


class GrantBody(Struct, frozen=True, forbid_unknown_fields=True):
    """Capabilities: what a plugin asks for, or what an operator grants it."""

    subscribe: Annotated[list[Pattern], Meta(max_length=50)] = []
    publish: Annotated[list[Pattern], Meta(max_length=50)] = []
    routes: bool = False
    hosts: Annotated[list[Host], Meta(max_length=50)] = []
    storage: Annotated[str, Meta(pattern=whole_match(NAMESPACE_PATTERN))] | None = None

    EXAMPLE: ClassVar[dict[str, Any]] = _EXAMPLE_GRANT


class EnableRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Enable a plugin; ``grants`` narrows what it asked for (default: all of it)."""

    grants: GrantBody | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"grants": _EXAMPLE_GRANT}


class PluginView(Struct, frozen=True):
    """A plugin as operators see it: its state (and why), grants, subtree and counters."""

    name: str
    state: State
    source: str
    reason: str | None
    version: str | None
    api: str | None
    description: str
    isolation: str | None
    requested: GrantBody | None
    grants: GrantBody | None
    endpoints: list[str]
    subscriptions: list[str]
    tenants: int
    path: str | None
    host_state: str | None
    restarts: int
    breaker: str | None
    load_ms: float | None
    statistics: dict[str, Any]

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "seo",
        "state": "running",
        "source": "built-in",
        "reason": None,
        "version": "1.0.0",
        "api": "^1.0",
        "description": "slug suggestions, descriptions and reading times for content",
        "isolation": "inline",
        "requested": _EXAMPLE_GRANT,
        "grants": _EXAMPLE_GRANT,
        "endpoints": ["GET /api/plugins/seo/nodes/<node_id>"],
        "subscriptions": ["content.node.*"],
        "tenants": 1,
        "path": "/app/plugins/seo",
        "host_state": "running",
        "restarts": 0,
        "breaker": "closed",
        "load_ms": 3.2,
        "statistics": {"calls": {"ok": 12}, "refused": {}, "allowed": {"storage": 12}},
    }


class PluginList(Struct, frozen=True):
    """Every discovered plugin."""

    items: list[PluginView]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [PluginView.EXAMPLE]}


class SwitchRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A tenant switches a plugin on or off for itself."""

    enabled: bool

    EXAMPLE: ClassVar[dict[str, Any]] = {"enabled": True}


class TenantPlugin(Struct, frozen=True):
    """A plugin an operator enabled, and whether the caller's tenant switched it on."""

    name: str
    description: str
    version: str | None
    state: State
    enabled: bool
    endpoints: list[str]

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "seo",
        "description": "slug suggestions, descriptions and reading times for content",
        "version": "1.0.0",
        "state": "running",
        "enabled": True,
        "endpoints": ["GET /api/plugins/seo/nodes/<node_id>"],
    }


class TenantPluginList(Struct, frozen=True):
    """The plugins the caller's tenant may switch on."""

    items: list[TenantPlugin]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [TenantPlugin.EXAMPLE]}
