"""HTTP seen through telemetry: an ASGI middleware, outermost, installed only when enabled.

Per request it:

* extracts the client's W3C ``traceparent``/``tracestate`` and opens the
  server span ``<METHOD> <route template>`` as their child (a new trace
  when there are none or they are invalid), current for the whole request,
  so every ``ask`` the handler makes carries it;
* shows the application the server span's own ``traceparent`` (the header
  is replaced in the scope), so events the request causes carry it in
  ``Envelope.trace_id``, and returns it in the response's ``traceparent``
  (with ``tracestate``) header;
* counts ``http_requests_total{method,route,status}`` and times
  ``http_request_duration_seconds{method,route}``; ``route`` is the route
  template the application put in :class:`RequestTelemetry` (``unmatched``
  when none matched, e.g. a 404 or a refusal before routing);
* makes the scope visible to the log filter (:data:`REQUEST_SCOPE`).

With telemetry off the application is not wrapped at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._logs import REQUEST_SCOPE

if TYPE_CHECKING:
    from ._metrics import Metrics
    from ._tracing import Tracing

__all__ = ("SCOPE_KEY", "RequestTelemetry", "TelemetryMiddleware")

#: Where the middleware keeps its :class:`RequestTelemetry` in the ASGI scope.
SCOPE_KEY = "triotok.telemetry"

Scope = Any
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]


class RequestTelemetry:
    """What the application tells the middleware about a request: its route template."""

    __slots__ = ("route", "status")

    def __init__(self) -> None:
        self.route: str | None = None
        self.status = 500  # until a response starts: an exception escaped


class TelemetryMiddleware:
    """See the module docstring."""

    def __init__(self, app: AsgiApp, *, tracing: Tracing | None, metrics: Metrics | None) -> None:
        self._app = app
        self._tracing = tracing
        self._metrics = metrics
        if tracing is not None:  # the SDK is loaded: bind what each request uses, once
            from opentelemetry.trace import SpanKind, StatusCode

            from ._tracing import extract, traceparent_of

            self._server_kind = SpanKind.SERVER
            self._error = StatusCode.ERROR
            self._extract = extract
            self._traceparent_of = traceparent_of

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = perf_counter()
        info = RequestTelemetry()
        scope[SCOPE_KEY] = info
        token = REQUEST_SCOPE.set(scope)
        method = scope["method"]
        try:
            if self._tracing is None:

                async def send_status(message: Any) -> None:
                    if message["type"] == "http.response.start":
                        info.status = message["status"]
                    await send(message)

                await self._app(scope, receive, send_status)
            else:
                await self._traced(scope, receive, send, info, method)
        finally:
            REQUEST_SCOPE.reset(token)
            if self._metrics is not None:
                self._metrics.observe_request(
                    method, info.route or "unmatched", info.status, perf_counter() - started
                )

    async def _traced(
        self, scope: Scope, receive: Any, send: Any, info: RequestTelemetry, method: str
    ) -> None:
        tracing = self._tracing
        assert tracing is not None
        traceparent = tracestate = None
        headers = []
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
                continue  # replaced below by the server span's
            if name == b"tracestate":
                tracestate = value.decode("latin-1")
            headers.append((name, value))
        parent = self._extract(traceparent, tracestate) if traceparent else None
        attributes = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        with tracing.scope(method, parent, self._server_kind, attributes) as span:
            span_context = span.get_span_context()
            own = self._traceparent_of(span_context).encode() if span_context.is_valid else None
            if own is not None:
                headers.append((b"traceparent", own))
                scope["headers"] = headers
            elif traceparent is not None:  # an invalid one: the application judges it
                headers.append((b"traceparent", traceparent.encode("latin-1")))
                scope["headers"] = headers
            returned: list[tuple[bytes, bytes]] = []
            if own is not None:
                returned.append((b"traceparent", own))
                if tracestate:
                    returned.append((b"tracestate", tracestate.encode("latin-1")))

            async def send_traced(message: Any) -> None:
                if message["type"] == "http.response.start":
                    info.status = message["status"]
                    if returned:
                        message = {
                            **message,
                            "headers": [*message.get("headers", ()), *returned],
                        }
                await send(message)

            try:
                await self._app(scope, receive, send_traced)
            finally:
                route = info.route or "unmatched"
                span.update_name(f"{method} {route}")
                ending: dict[str, str | int] = {
                    "http.route": route,
                    "http.response.status_code": info.status,
                }
                tenant = getattr(scope.get("triotok"), "tenant_id", None)
                if tenant is not None:
                    ending["triotok.tenant.id"] = tenant
                span.set_attributes(ending)  # one lock, not one per attribute
                if info.status >= 500:
                    span.set_status(self._error)
