"""The route table: every route declared once, with its permission and schemas.

A :class:`Route` says everything about one endpoint: method, path, handler,
the permission it needs (``None``: public), the JSON Schemas of its body,
query and response, and the errors it may answer. The Quart app registers
exactly these routes and ``/openapi.json`` is generated from them, so the
documentation, the enforcement and the URL map cannot drift apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._json import dumps
from ..modules import Permission
from ..modules.access import ApiKey
from ..modules.tenants import Tenant

if TYPE_CHECKING:
    from ._services import Services

__all__ = ("Call", "Handler", "Reply", "Route", "json_bytes", "list_of")


def json_bytes(value: Any) -> bytes:
    """A response body: strict JSON only (a non-finite number is a bug, never ``Infinity``)."""
    return dumps(value).encode()


def list_of(item: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``{"items": [item, ...]}``."""
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
    }


@dataclass(slots=True)
class Reply:
    """A handler's answer: status, JSON body (or raw bytes) and extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(slots=True)
class Call:
    """Everything a handler gets: who calls, for which tenant, with what input."""

    services: Services
    route: Route
    params: dict[str, Any]
    query: Mapping[str, Any]
    body: Any
    key: ApiKey | None
    tenant: Tenant | None
    request_id: str
    traceparent_header: str | None
    #: The request's headers (conditional requests read ``If-Match``/``If-None-Match``).
    headers: Headers = field(default_factory=lambda: _NO_HEADERS)

    @property
    def principal(self) -> str:
        """The audit log's "who": ``key:<id>`` or ``anonymous``."""
        return self.key.principal if self.key is not None else "anonymous"

    @property
    def traceparent(self) -> str:
        """The request's W3C ``traceparent`` (a new trace when the client sent none).

        Events caused by this request carry it in ``Envelope.trace_id``.
        """
        if self.traceparent_header is None:
            self.traceparent_header = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        return self.traceparent_header


class Headers(Protocol):
    """What handlers read of the request's headers (case-insensitive names)."""

    def get(self, key: str, /) -> str | None: ...


_NO_HEADERS: dict[str, str] = {}

Handler = Callable[[Call], Awaitable[Reply | dict[str, Any] | list[Any]]]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint. ``path`` uses Quart syntax (``/api/tenants/<tenant_id>``).

    Query parameters are optional unless named in ``query_required``.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    permission: Permission | None
    status: int = 200
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    query_required: tuple[str, ...] = ()
    response: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"

    @property
    def public(self) -> bool:
        return self.permission is None

    @property
    def tenant_scoped(self) -> bool:
        return self.permission is not None and self.permission.scope == "tenant"

    @property
    def endpoint(self) -> str:
        return f"{self.method.lower()} {self.path}"

    @property
    def openapi_path(self) -> str:
        return self.path.replace("<", "{").replace(">", "}")

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("<")]

    def all_errors(self) -> list[int]:
        """Every status this route may answer besides success (for OpenAPI and tests)."""
        statuses = {429, 500}
        if self.permission is not None:
            statuses |= {401, 403, 503}
        if self.tenant_scoped or "tenant_id" in self.path_params:
            statuses.add(400)
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        if self.query:
            statuses.add(400)
        statuses.update(self.errors)
        return sorted(statuses)
