"""The plugin API a running plugin uses: :class:`PluginContext` and its :class:`Storage`.

It is the same object in both isolation modes; only its *port* differs. An
inline plugin's port calls the platform's capability gate directly; a
process-isolated plugin's port sends each call as a CBOR frame to its host in
the platform, which runs the same gate. Either way the gate decides, so a
plugin cannot do more than its grant by talking to the port itself.

Every call the platform makes into a plugin (an event, a request) runs in a
*scope* naming the call and its tenant: storage defaults to that tenant and
refuses any other; an event is published for that tenant. Code running
outside a call (a plugin's own actor, a timer) has no scope and must name a
tenant that switched the plugin on.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from ..transport import Envelope, default_registry
from ._api import Capabilities, HttpReply, Limits

__all__ = ("PluginContext", "Port", "Scope", "Storage", "current_scope", "json_ready", "scoped")


@dataclass(frozen=True, slots=True)
class Scope:
    """The platform's call into a plugin that some code runs for: its id and tenant."""

    call: int
    tenant: str | None


_SCOPE: ContextVar[Scope | None] = ContextVar("triotok_plugin_scope", default=None)


def current_scope() -> Scope | None:
    """The scope of the running code (``None`` outside any call into the plugin)."""
    return _SCOPE.get()


@contextmanager
def scoped(scope: Scope | None) -> Iterator[None]:
    """Run the block (and tasks it starts) in ``scope``."""
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


class Port(Protocol):
    """Carries one API call to the capability gate: ``publish``, ``storage`` or ``http``."""

    async def api(self, op: str, args: dict[str, Any], scope: Scope | None) -> Any: ...


def json_ready(value: Any) -> Any:
    """An event payload's wire map as JSON: UUIDs, decimals as text, times as ISO-8601."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


class PluginContext:
    """What a plugin may do on the platform (handed to :meth:`Plugin.initialize`).

    * ``publish(payload)``: an event of a registered type within the grant's
      ``publish`` patterns, for the current tenant;
    * ``storage`` (and ``storage_of(namespace)``): keys and JSON values in the
      plugin's namespace, per tenant;
    * ``http(method, url)``: an outbound request to a granted host;
    * ``event_data(envelope)``: an event's payload as JSON-ready data;
    * ``tenant``: the tenant of the call being handled; ``settings``, ``grants``,
      ``limits`` and ``log``.

    Refusals raise :class:`~triotok.plugins.CapabilityDenied` and are counted.
    """

    def __init__(
        self,
        name: str,
        port: Port,
        *,
        grants: Capabilities,
        settings: Mapping[str, Any] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.grants = grants
        self.settings: Mapping[str, Any] = dict(settings or {})
        self.limits = limits or Limits()
        self.log = logging.getLogger(f"triotok.plugins.{name}")
        self._port = port

    def __repr__(self) -> str:
        return f"<PluginContext {self.name!r}>"

    @property
    def tenant(self) -> str | None:
        """The tenant of the event or request being handled (``None`` outside a call)."""
        scope = _SCOPE.get()
        return None if scope is None else scope.tenant

    @property
    def storage(self) -> Storage:
        """The plugin's own namespace (the one its grant names)."""
        return Storage(self, self.grants.storage or "")

    def storage_of(self, namespace: str) -> Storage:
        """Another namespace: every call on it is refused unless the grant names it."""
        return Storage(self, namespace)

    async def publish(
        self, payload: Any, *, tenant_id: str | None = None, cause: Envelope | None = None
    ) -> Envelope:
        """Publish ``payload`` (a registered event type) through the platform's outbox.

        The event is for ``tenant_id``, else the cause's tenant, else the
        current call's tenant; with ``cause`` it continues that event's
        correlation and trace.
        """
        actor = f"/app/plugins/{self.name}"
        if cause is not None:
            envelope = cause.caused(payload, actor_id=actor)
            if tenant_id is not None and tenant_id != envelope.tenant_id:
                envelope = Envelope.new(
                    payload, tenant_id=tenant_id, trace_id=cause.trace_id, actor_id=actor
                )
        else:
            envelope = Envelope.new(payload, tenant_id=tenant_id or self.tenant, actor_id=actor)
        await self._port.api("publish", {"envelope": envelope}, _SCOPE.get())
        return envelope

    async def http(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        timeout: float = 10.0,  # noqa: ASYNC109  # the request's own limit, enforced by the gate
    ) -> HttpReply:
        """An HTTP request to a granted host (no redirects followed; the body is capped)."""
        args = {
            "method": method,
            "url": url,
            "headers": dict(headers or {}),
            "body": bytes(body),
            "timeout": float(timeout),
        }
        reply: HttpReply = await self._port.api("http", args, _SCOPE.get())
        return reply

    def event_data(self, envelope: Envelope) -> dict[str, Any]:
        """``envelope``'s payload as the JSON-ready map its wire format carries."""
        wire = default_registry.payload_to_wire(
            envelope.event_type, envelope.schema_version, envelope.payload
        )
        data: dict[str, Any] = json_ready(wire)
        return data


class Storage:
    """Keys and JSON values of one namespace, per tenant (default: the current call's).

    ::

        await ctx.storage.put("node/42", {"slug": "hello"})
        await ctx.storage.get("node/42")           # {"slug": "hello"}
        await ctx.storage.list("node/")            # [("node/42", {"slug": "hello"})]
    """

    def __init__(self, ctx: PluginContext, namespace: str) -> None:
        self._ctx = ctx
        self.namespace = namespace

    async def _call(self, op: str, tenant: str | None, **args: Any) -> Any:
        return await self._ctx._port.api(
            "storage",
            {"op": op, "namespace": self.namespace, "tenant": tenant, **args},
            _SCOPE.get(),
        )

    async def get(self, key: str, *, tenant: str | None = None) -> Any:
        """The value at ``key``, or ``None``."""
        return await self._call("get", tenant, key=key)

    async def put(self, key: str, value: Any, *, tenant: str | None = None) -> None:
        """Store ``value`` (JSON data, up to 64 KiB encoded) at ``key``."""
        await self._call("put", tenant, key=key, value=value)

    async def delete(self, key: str, *, tenant: str | None = None) -> bool:
        """Remove ``key``; whether it existed."""
        existed: bool = await self._call("delete", tenant, key=key)
        return existed

    async def list(
        self, prefix: str = "", *, tenant: str | None = None, after: str = "", limit: int = 100
    ) -> list[tuple[str, Any]]:
        """Up to ``limit`` ``(key, value)`` pairs whose key starts with ``prefix``, by key."""
        items = await self._call("list", tenant, prefix=prefix, after=after, limit=limit)
        return [(str(k), v) for k, v in items]
