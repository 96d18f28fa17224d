"""The route table: every route declared once, with its permission and models.

A :class:`Route` says everything about one endpoint: method, path, handler,
its ``operationId``, the permission it needs (``None``: public), the msgspec
types of its body, query and response (see ``_models``), and the errors it
may answer. The Quart app registers exactly these routes, validates with
those types, and ``/openapi.json`` is generated from them, so the
documentation, the enforcement and the URL map cannot drift apart.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from .._exceptions import InvalidConfig
from .._json import dumps
from ..modules import Permission
from ..modules.access import ApiKey
from ..modules.tenants import Tenant
from ..resilience import Criticality

if TYPE_CHECKING:
    from ._services import Services

__all__ = ("Call", "Handler", "Reply", "Route", "json_bytes")

CriticalityName = Literal["critical", "normal", "optional"]

#: ``operationId`` style: lower camelCase (``getCurrentTenant``).
OPERATION_ID = re.compile(r"[a-z][a-zA-Z0-9]*")

#: Methods that only read: a route with one of them is a read unless it says otherwise.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: The control plane (health, metrics, the operators' routes and page): never
#: refused by the service mode. A route elsewhere may say ``control=True``.
CONTROL_PATHS = frozenset({"/live", "/ready", "/health", "/metrics", "/system"})
CONTROL_PREFIX = "/system/"


def json_bytes(value: Any) -> bytes:
    """A response body: strict JSON only (a non-finite number is a bug, never ``Infinity``).

    A msgspec Struct is sent as its JSON object, under the same rules.
    """
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    return dumps(value).encode()


def _camel(name: str) -> str:
    head, *rest = name.strip("_").split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(slots=True)
class Reply:
    """A handler's answer: status, JSON body (or raw bytes) and extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(slots=True)
class Call:
    """Everything a handler gets: who calls, for which tenant, with what input.

    ``body`` and ``query`` are instances of the route's ``body`` and ``query``
    Structs (``None`` when it declares none), already validated.
    """

    services: Services
    route: Route
    params: dict[str, Any]
    query: Any
    body: Any
    key: ApiKey | None
    tenant: Tenant | None
    request_id: str
    traceparent_header: str | None
    #: The request's headers (conditional requests read ``If-Match``/``If-None-Match``).
    headers: Headers = field(default_factory=lambda: _NO_HEADERS)
    #: The raw query string, for parameters a route reads by prefix (``attr.<name>``).
    query_string: bytes = b""

    @property
    def principal(self) -> str:
        """The audit log's "who": ``key:<id>`` or ``anonymous``."""
        return self.key.principal if self.key is not None else "anonymous"

    @property
    def restricted(self) -> bool:
        """Whether the key's role has the route's permission only over a subset.

        A restricted grant (``Grant(..., restricted=True)``, e.g. the
        ``storefront`` role's ``products:read``) lets the route through; the
        handler then answers only the subset its module defines (active
        products, published content, the orders this key placed).
        """
        permission = self.route.permission
        if self.key is None or permission is None:
            return False
        return self.services.roles.restricted(self.key.role.value, permission)

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

    ``body`` and ``query`` are msgspec Structs (each field of ``query`` one
    parameter, required unless it has a default); ``response`` is any type
    msgspec describes (a Struct, ``str`` for text), used for ``/openapi.json``
    (and checked against real answers by the tests). ``operation_id`` is the
    OpenAPI ``operationId`` (lower camelCase, unique; default: the handler's
    name in camelCase); ``example`` is the success body's example when the
    ``response`` type carries no ``EXAMPLE`` of its own.

    ::

        Route("GET", "/api/tenants/current", current_tenant, "The caller's tenant",
              "tenants", Permission("tenant", "read"), operation_id="getCurrentTenant",
              response=models.Tenant, errors=(404,))
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    permission: Permission | None
    status: int = 200
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    response: Any = None
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    operation_id: str = ""
    example: Any = None
    #: JSON Schemas of path parameters beyond the platform's own (``tenant_id``).
    path_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Accepts ``Idempotency-Key``: a retry with the same key and body gets the
    #: first answer and nothing runs again (tenant-scoped ``POST`` routes only).
    idempotent: bool = False
    criticality: Criticality | CriticalityName = Criticality.NORMAL
    #: ``None``: derived from the method (GET, HEAD and OPTIONS read).
    writes: bool | None = None
    #: ``None``: derived from the path (health, metrics, ``/system...``).
    control: bool | None = None
    serve_stale: bool = False
    flag: str | None = None

    def __post_init__(self) -> None:
        if self.idempotent and not (self.method == "POST" and self.tenant_scoped):
            raise ValueError(f"route {self.endpoint!r}: only tenant POST routes are idempotent")
        if not self.operation_id:
            object.__setattr__(self, "operation_id", _camel(self.handler.__name__))
        if not OPERATION_ID.fullmatch(self.operation_id):
            raise ValueError(f"route {self.endpoint!r}: operation_id must be lower camelCase")
        try:
            object.__setattr__(self, "criticality", Criticality(self.criticality))
        except ValueError:
            raise InvalidConfig(
                "criticality",
                f"route {self.endpoint!r}: {self.criticality!r} is not one of"
                " critical, normal, optional",
            ) from None
        if self.writes is None:
            object.__setattr__(self, "writes", self.method.upper() not in READ_METHODS)
        if self.control is None:
            control = self.path in CONTROL_PATHS or self.path.startswith(CONTROL_PREFIX)
            object.__setattr__(self, "control", control)
        if self.serve_stale and self.writes:
            raise InvalidConfig("serve_stale", f"route {self.endpoint!r}: only reads serve stale")

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
        if self.query is not None:
            statuses.add(400)
        if self.idempotent:
            statuses |= {400, 409, 422}
        if not self.control:
            statuses.add(503)  # refused by the service mode
        if self.flag is not None:
            statuses.add(404)
        statuses.update(self.errors)
        return sorted(statuses)
