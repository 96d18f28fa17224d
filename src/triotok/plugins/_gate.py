"""The capability gate: every API call of a plugin is decided here, in the platform's process.

Invariants:

* A plugin publishes only event types its grant's ``publish`` patterns
  cover, for the tenant of the call it handles (outside a call: for a tenant
  that switched it on); the event goes through the outbox like any other.
* Storage is read and written only in the grant's namespace, for the
  tenant of the call (outside a call: a tenant that switched it on).
* Outbound HTTP goes only to granted hosts, over http or https, without
  following redirects, with a capped response body.
* Every refusal raises :class:`CapabilityDenied`, is counted per capability
  and logged; the first refusals of each minute are also audited (a plugin
  looping on a refused call cannot flood the audit log; the counts stay exact).

Both isolation modes go through the same gate: an inline plugin's port calls
:meth:`CapabilityGate.api` directly, a process plugin's host calls it for
each API frame from the child.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import trio

from .._exceptions import InvalidInput
from ..modules.audit import AuditEntry
from ..transport import Envelope
from ._api import Capabilities, HttpReply
from ._context import Scope
from ._errors import CapabilityDenied
from ._repository import PluginRepository

__all__ = ("AUDITED_REFUSALS_PER_MINUTE", "CapabilityGate", "OutboundHttp")

logger = logging.getLogger("triotok.plugins")

AUDITED_REFUSALS_PER_MINUTE = 10
#: Largest response body a plugin's outbound request returns.
MAX_RESPONSE_BYTES = 1_048_576
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class OutboundHttp:
    """The plugins' HTTP/1.1 client: h11 over trio streams, one connection per request.

    No redirects are followed (a redirect could leave the granted host), no
    proxy or environment is consulted, the answer's body is capped at
    :data:`MAX_RESPONSE_BYTES`, and ``timeout`` bounds the whole exchange.
    ``https`` verifies certificates with the system's trust store.
    """

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,  # noqa: ASYNC109  # the exchange's own limit, from the plugin's call
    ) -> HttpReply:
        import h11

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = [(k, v) for k, v in headers.items() if k.lower() not in _HOP_HEADERS]
        authority = host if parts.port is None else f"{host}:{parts.port}"
        sent += [("Host", authority), ("Content-Length", str(len(body))), ("Connection", "close")]
        connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=65536)
        with trio.fail_after(timeout):
            stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
            if parts.scheme == "https":
                import ssl

                stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=host)
            async with stream:
                out = connection.send(h11.Request(method=method, target=target, headers=sent))
                out = (out or b"") + (connection.send(h11.Data(data=body)) or b"") if body else out
                out = (out or b"") + (connection.send(h11.EndOfMessage()) or b"")
                await stream.send_all(out)
                status, answer_headers, chunks, size = 0, {}, [], 0
                while True:
                    event = connection.next_event()
                    if event is h11.NEED_DATA:
                        connection.receive_data(bytes(await stream.receive_some(65536)))
                        continue
                    if isinstance(event, h11.Response):
                        status = event.status_code
                        answer_headers = {k.decode(): v.decode("latin-1") for k, v in event.headers}
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > MAX_RESPONSE_BYTES:
                            break
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break
        return HttpReply(status, answer_headers, b"".join(chunks))

    async def aclose(self) -> None:
        """Nothing is kept open between requests."""
        await trio.lowlevel.checkpoint()


class CapabilityGate:
    """Decides and performs the API calls of plugin ``name`` under its ``grants``."""

    def __init__(
        self,
        name: str,
        grants: Capabilities,
        *,
        repository: PluginRepository,
        publish: Callable[[Envelope], Any],
        switched_on: Callable[[str], bool],
        http: OutboundHttp,
    ) -> None:
        self.name = name
        self.grants = grants
        #: The manager's tables (refusals and crashes are audited through it).
        self.repository = repository
        self._repository = repository
        self._publish = publish
        self._switched_on = switched_on
        self._http = http
        #: Refusals by capability, and calls allowed by operation.
        self.refused: Counter[str] = Counter()
        self.allowed: Counter[str] = Counter()
        self._audit_window = (-1.0, 0)  # (window start, audited in it)

    # ---------------------------------------------------------------- the port

    async def api(self, op: str, args: dict[str, Any], scope: Scope | None) -> Any:
        result: Any = None
        if op == "publish":
            await self._publish_checked(args.get("envelope"), scope)
        elif op == "storage":
            result = await self._storage(args, scope)
        elif op == "http":
            result = await self._outbound(args, scope)
        else:
            raise InvalidInput(f"unknown plugin API call {str(op)[:40]!r}", field="op")
        self.allowed[op] += 1
        return result

    async def deny(
        self, capability: str, target: str, scope: Scope | None, reason: str = ""
    ) -> NoReturn:
        """:meth:`refuse`, then raise the refusal."""
        raise await self.refuse(capability, target, scope, reason)

    async def refuse(
        self, capability: str, target: str, scope: Scope | None, reason: str = ""
    ) -> CapabilityDenied:
        """Count, log and (within the minute's budget) audit a refusal; return it."""
        error = CapabilityDenied(self.name, capability, target, reason)
        self.refused[capability] += 1
        logger.warning("%s", error)
        now = trio.current_time()
        start, count = self._audit_window
        if now - start >= 60.0:
            start, count = now, 0
        if count < AUDITED_REFUSALS_PER_MINUTE:
            count += 1
            tenant = scope.tenant if scope is not None else None
            entry = AuditEntry(
                f"plugin:{self.name}",
                "plugin.refused",
                f"plugin/{self.name}",
                tenant,
                {"capability": capability, "target": target[:200], "reason": reason[:200]},
            )
            try:
                await self._repository.audit(entry)
            except Exception:  # the refusal stands even if the audit row cannot be written
                logger.exception("could not audit a refusal of plugin %s", self.name)
        self._audit_window = (start, count)
        return error

    async def _tenant(self, capability: str, tenant: object, scope: Scope | None, what: str) -> str:
        """The tenant a call acts for: the call's own, else one that switched the plugin on."""
        scoped = scope.tenant if scope is not None else None
        if tenant is None:
            tenant = scoped
        if not isinstance(tenant, str) or not tenant:
            await self.deny(capability, what, scope, "no tenant: outside a call, name a tenant")
        if scoped is not None and tenant != scoped:
            await self.deny(capability, f"tenant {tenant}", scope, f"the call is for {scoped}")
        if scoped is None and not self._switched_on(tenant):
            await self.deny(
                capability, f"tenant {tenant}", scope, "that tenant has it switched off"
            )
        return tenant

    # ---------------------------------------------------------------- operations

    async def _publish_checked(self, envelope: object, scope: Scope | None) -> None:
        if not isinstance(envelope, Envelope):
            raise InvalidInput("publish takes an Envelope", field="envelope")
        if not self.grants.may_publish(envelope.event_type):
            await self.deny("publish", envelope.event_type, scope)
        await self._tenant("publish", envelope.tenant_id, scope, envelope.event_type)
        await self._publish(envelope)

    async def _storage(self, args: dict[str, Any], scope: Scope | None) -> Any:
        namespace = args.get("namespace")
        if not isinstance(namespace, str) or namespace != self.grants.storage:
            await self.deny("storage", f"namespace {namespace}", scope)
        assert isinstance(namespace, str)
        tenant = await self._tenant("storage", args.get("tenant"), scope, f"namespace {namespace}")
        repo, op = self._repository, args.get("op")
        if op == "get":
            return await repo.get(namespace, tenant, args.get("key"))  # type: ignore[arg-type]  # checked by the repository
        if op == "put":
            await repo.put(namespace, tenant, args.get("key"), args.get("value"))  # type: ignore[arg-type]  # checked by the repository
            return None
        if op == "delete":
            return await repo.delete(namespace, tenant, args.get("key"))  # type: ignore[arg-type]  # checked by the repository
        if op == "list":
            items = await repo.list(
                namespace,
                tenant,
                args.get("prefix", ""),
                args.get("after", ""),
                args.get("limit", 100),
            )
            return [[k, v] for k, v in items]
        raise InvalidInput(f"unknown storage operation {str(op)[:40]!r}", field="op")

    async def _outbound(self, args: dict[str, Any], scope: Scope | None) -> HttpReply:
        url = args.get("url")
        method = args.get("method")
        if not isinstance(url, str) or not isinstance(method, str):
            raise InvalidInput("http takes a method and a URL", field="url")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018  # raises ValueError for a port that is not a number
        except ValueError:
            raise InvalidInput(f"{url[:100]!r} is not a URL", field="url") from None
        if parts.scheme not in ("http", "https") or not host:
            await self.deny("http", url[:200], scope, "only http and https URLs")
        if parts.username or parts.password:
            await self.deny("http", host, scope, "no credentials in URLs")
        if not self.grants.may_call(host):
            await self.deny("http", host, scope)
        if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise InvalidInput(f"{method[:20]!r} is not an HTTP method", field="method")
        headers = args.get("headers") or {}
        body = args.get("body") or b""
        timeout = float(args.get("timeout", 10.0))
        if not 0 < timeout <= 60:
            raise InvalidInput("timeout is more than 0 and at most 60 seconds", field="timeout")
        return await self._http.request(method.upper(), url, headers, bytes(body), timeout)

    def statistics(self) -> dict[str, Any]:
        """Refusals and allowed calls, for the tree and ``GET /system/plugins``."""
        return {"refused": dict(self.refused), "allowed": dict(self.allowed)}
