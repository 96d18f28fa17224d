"""The Quart (quart-trio) application: the route table, wrapped in the request pipeline.

Pipeline of every request, in order (each step may answer a problem):

1. the ASGI :class:`~._middleware.Gateway`, before any routing: request id,
   ``traceparent``, per-IP rate limit (429), declared body size (413);
2. the route's view: **the service-mode gate** (503 ``degraded``,
   ``read_only`` or ``offline`` with ``Retry-After``, at once: one attribute
   check while the node is ``full``), a feature flag that is off (404), API
   key (401), per-key rate limit (429), tenant id (400), tenant/role
   authorisation (403), tenant resolution through the cache (404, or 403
   ``tenant_inactive``), the flag for this tenant (404), the query and the
   body: strict JSON first, then converted into the route's msgspec Structs
   (415/400/422), then the handler, or, for a ``serve_stale`` read while
   the store is down, its last good answer (``Cache-Status``, ``Age``);
3. on the way out (the gateway again, for every response including
   problems): security headers, ``X-Request-Id``, ``RateLimit`` headers.

Any exception becomes problem+json (see ``_problems``); nothing else ever
reaches the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from .._exceptions import AskTimeout, CircuitOpen, MailboxFull, RequestError, StoreUnavailable
from ..modules import authorize
from ..modules.access import parse_key, verify_key
from ..modules.tenants import validate_tenant_id
from ..resilience import Criticality
from ._json import decode_body
from ._middleware import SCOPE_KEY, ClientLimits, Gateway, RequestState
from ._models import convert
from ._problems import PROBLEM_JSON, Problem, problem_body, problem_for
from ._query import parse_query
from ._routes import Call, Reply, Route, json_bytes
from ._services import Services
from ._stale import StaleResponses, stale_headers

__all__ = ("create_app",)

#: What a ``serve_stale`` read falls back to its last good answer on.
_STORE_TROUBLE = (StoreUnavailable, CircuitOpen, AskTimeout, MailboxFull)

_REFUSALS = {
    "degraded": "the service is degraded: optional features are off",
    "read_only": "the service is read-only for now: writes are refused",
    "offline": "the service is offline: only health and operator routes answer",
}


def create_app(services: Services, routes: Iterable[Route] | None = None) -> QuartTrio:
    """Build the Quart app serving ``routes`` (default: every route of ``services.modules``)."""
    table = services.routes if routes is None else tuple(routes)
    options = services.options
    app = QuartTrio("triotok", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = options.max_body_bytes
    # A body not received within this many seconds is a 408 ``request_timeout``.
    app.config["BODY_TIMEOUT"] = options.body_timeout
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    # werkzeug answers "//a" (merge_slashes) and "/a" for a rule "/a/"
    # (strict_slashes) with a redirect whose absolute Location it builds from
    # the client's Host header, and an HTML body. No URL of ours is reached that
    # way: such paths are a 404 problem, and no route may end with "/".
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    for route in table:
        if route.path != "/" and route.path.endswith("/"):
            raise ValueError(f"route {route.endpoint!r}: paths never end with '/'")
    app.config["routes"] = table
    app.config["services"] = services
    limits = ClientLimits(options.rate_limit_per_ip, options.rate_limit_per_key)
    app.config["limits"] = limits
    stale = services.stale

    def refuse(status: int, code: str, detail: str, path: str, request_id: str) -> bytes:
        problem = Problem(status, code, detail)
        return problem_body(problem, instance=path, request_id=request_id)

    app.asgi_app = Gateway(  # type: ignore[method-assign]  # Quart's documented middleware hook
        app.asgi_app,
        limits,
        max_body_bytes=options.max_body_bytes,
        trust_proxy=options.trust_proxy,
        trusted_proxy_hops=options.trusted_proxy_hops,
        refuse=refuse,
    )

    @app.errorhandler(Exception)
    async def _problem(exc: Exception) -> Response:
        problem = problem_for(exc)
        state = _state()
        request_id = state.request_id if state is not None else None
        body = problem_body(problem, instance=request.path, request_id=request_id)
        response = Response(body, status=problem.status, content_type=PROBLEM_JSON)
        for name, value in problem.headers.items():
            response.headers[name] = value
        if problem.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="triotok"'
        return response

    for route in table:
        app.add_url_rule(
            route.path,
            endpoint=route.endpoint,
            view_func=_view(route, services, limits, stale),
            methods=[route.method],
        )
    return app


def _view(route: Route, services: Services, limits: ClientLimits, stale: StaleResponses) -> Any:
    options = services.options
    board = services.context.mode
    flags = services.context.flags
    gated = not route.control
    criticality = Criticality(route.criticality)
    writes = bool(route.writes)
    flag = route.flag
    serve_stale = route.serve_stale

    async def view(**params: Any) -> Response:
        # The service-mode gate: while the node is full, this one attribute check.
        if board.restricted and gated:
            code = board.refusal(criticality, writes)
            if code is not None:
                return _refused(code, board.retry_after)
        if flag is not None:
            known = flags.get(flag)
            if known is None or not known.enabled:
                raise RequestError("no route matches this URL", status=404, code="route_not_found")
        state = _state()
        assert state is not None  # the gateway runs before every view
        key = tenant = None
        request_tenant: str | None = None
        if "tenant_id" in params:
            params["tenant_id"] = validate_tenant_id(params["tenant_id"])
        permission = route.permission
        if permission is not None:
            key = await _authenticate(services)
            decision = limits.key.try_hit(key.id)
            state.limits["key"] = decision
            if not decision.allowed:
                raise RequestError(
                    "too many requests with this key", status=429, code="rate_limited"
                )
            if permission.scope == "tenant":
                header = _header("X-Tenant")
                if header is None:
                    request_tenant = key.tenant_id
                else:
                    request_tenant = validate_tenant_id(header, where="X-Tenant")
            authorize(
                services.roles,
                key.role.value,
                key.tenant_id,
                permission,
                request_tenant=request_tenant,
                operator_tenant=options.operator_tenant,
            )
            # The key's own tenant must exist and be active (cached: one query per stampede).
            tenant = await services.tenants.get(key.tenant_id)
            if tenant is None:
                raise RequestError("unknown tenant", status=404, code="tenant_not_found")
            if not tenant.active:
                raise RequestError("this tenant is deactivated", status=403, code="tenant_inactive")
        if flag is not None:
            subject = request_tenant
            if subject is None and tenant is not None:
                subject = tenant.id
            if not flags.enabled(flag, tenant=subject, key=key.id if key is not None else None):
                raise RequestError("no route matches this URL", status=404, code="route_not_found")
        query = _query(route)
        body = await _body(route)
        call = Call(
            services=services,
            route=route,
            params=params,
            query=query,
            body=body,
            key=key,
            tenant=tenant,
            request_id=state.request_id,
            traceparent_header=state.traceparent,
            headers=request.headers,
        )
        if not serve_stale:
            result = await route.handler(call)
        else:
            copy_key = (
                request_tenant or (tenant.id if tenant is not None else ""),
                key.role.value if key is not None else "",
                request.path,
                request.query_string,
            )
            if board.store_down:
                answer = _stale_answer(stale, copy_key)
                if answer is not None:
                    return answer
            try:
                result = await route.handler(call)
            except _STORE_TROUBLE:
                answer = _stale_answer(stale, copy_key)
                if answer is None:
                    raise
                return answer
        reply = result if isinstance(result, Reply) else Reply(result, route.status)
        payload = reply.body if isinstance(reply.body, bytes) else json_bytes(reply.body)
        response = Response(payload, status=reply.status, content_type=reply.content_type)
        for name, value in reply.headers.items():
            response.headers[name] = value
        if serve_stale and reply.status == 200:
            stale.keep(copy_key, payload, reply.content_type, reply.headers, trio.current_time())
        return response

    view.__name__ = route.endpoint
    return view


def _refused(code: str, retry_after: int) -> Response:
    """The gate's 503: problem+json with the mode as its code, and ``Retry-After``."""
    state = _state()
    problem = Problem(503, code, _REFUSALS.get(code, "the service cannot take this request now"))
    body = problem_body(
        problem, instance=request.path, request_id=state.request_id if state else None
    )
    response = Response(body, status=503, content_type=PROBLEM_JSON)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _stale_answer(stale: StaleResponses, key: Any) -> Response | None:
    found = stale.find(key, trio.current_time())
    if found is None:
        return None
    copy, age = found
    response = Response(copy.body, status=200, content_type=copy.content_type)
    for name, value in stale_headers(copy, age, "store-unavailable").items():
        response.headers[name] = value
    return response


def _state() -> RequestState | None:
    scope: Any = request.scope  # a TypedDict in Quart's stubs; the gateway adds its key
    state: RequestState | None = scope.get(SCOPE_KEY)
    return state


async def _authenticate(services: Services) -> Any:
    header = _header("Authorization")
    if header is None:
        raise RequestError("an API key is required", status=401, code="missing_api_key")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise RequestError(
            "use 'Authorization: Bearer <key>'", status=401, code="invalid_authorization"
        )
    presented = presented.strip()
    key_id = parse_key(presented)
    if key_id is None:
        raise RequestError("invalid API key", status=401, code="invalid_api_key")
    return verify_key(await services.keys.get(key_id), presented)


def _header(name: str) -> str | None:
    """A request header as text: strict UTF-8, else a 422 naming the header."""
    value = request.headers.get(name)
    if value is None or value.isascii():
        return value
    try:
        # Quart decodes header bytes as latin-1: undo that, then decode them as UTF-8.
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise RequestError(
            f"the {name} header is not valid UTF-8 text",
            status=422,
            code="validation_failed",
            errors=[{"in": "header", "path": name, "message": "is not valid UTF-8 text"}],
        ) from None


def _query(route: Route) -> Any:
    if route.query is None:
        return None  # without touching the query string: parsing it costs
    return parse_query(request.query_string, route.query)


async def _body(route: Route) -> Any:
    if route.body is None:
        return None
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise RequestError(
            "send the body as application/json", status=415, code="unsupported_media_type"
        )
    # The strict JSON rules first (depth, non-finite numbers, text), then the Struct.
    body = decode_body(await request.get_data(False, False, False))  # cache, as_text, form
    return convert(route.body, body)
