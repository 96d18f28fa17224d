"""The Quart (quart-trio) application: the route table, wrapped in the request pipeline.

Pipeline of every request, in order (each step may answer a problem):

1. the ASGI :class:`~._middleware.Gateway`, before any routing: request id,
   ``traceparent``, per-IP rate limit (429), declared body size (413);
2. the route's pipeline (:func:`_handle`, the same in the Quart view and the
   gateway's direct lane): **the service-mode gate** (503 ``degraded``,
   ``read_only`` or ``offline`` with ``Retry-After``, at once: one attribute
   check while the node is ``full``), a feature flag that is off (404), API
   key (401), per-key rate limit (429), tenant id (400), tenant/role
   authorisation (403), tenant resolution through the cache (404, or 403
   ``tenant_inactive``), the flag for this tenant (404), the query and the
   body: strict JSON first, then converted into the route's msgspec Structs
   (415/400/422), then the handler, or, for a ``serve_stale`` read while
   the store is down, its last good answer (``Cache-Status``, ``Age``);
3. a successful write of a tenant-scoped route gets ``X-Consistency-Token``:
   the outbox position at or after its event (``min_token`` of read-model
   lists and searches waits for it);
4. on the way out (the gateway again, for every response including
   problems): security headers, ``X-Request-Id``, ``RateLimit`` headers.

Any exception becomes problem+json (see ``_problems``); nothing else ever
reaches the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from .._exceptions import (
    AskTimeout,
    CircuitOpen,
    InvalidConfig,
    MailboxFull,
    RequestError,
    StoreUnavailable,
)
from ..modules import authorize
from ..modules.access import parse_key, verify_key
from ..modules.tenants import validate_tenant_id
from ..resilience import Criticality
from ..store import outbox_head
from ._idempotency import (
    HEADER,
    IdempotencyKeys,
    Stored,
    fingerprint,
    parse_idempotency_key,
    run_once,
)
from ._json import decode_body
from ._middleware import SCOPE_KEY, ClientLimits, Gateway, RequestState, Scope, Send
from ._models import convert
from ._problems import PROBLEM_JSON, Problem, problem_body, problem_for
from ._query import parse_query
from ._routes import Call, Headers, Reply, Route, json_bytes
from ._services import Services
from ._stale import StaleResponses, stale_headers

__all__ = ("CONSISTENCY_TOKEN", "create_app")

#: The header a write's response carries its consistency token in.
CONSISTENCY_TOKEN = "X-Consistency-Token"

_PROBLEM_JSON = PROBLEM_JSON.encode()

#: What a ``serve_stale`` read falls back to its last good answer on.
_STORE_TROUBLE = (StoreUnavailable, CircuitOpen, AskTimeout, MailboxFull)

_REFUSALS = {
    "degraded": "the service is degraded: optional features are off",
    "read_only": "the service is read-only for now: writes are refused",
    "offline": "the service is offline: only health and operator routes answer",
}


def create_app(
    services: Services, routes: Iterable[Route] | None = None, *, direct: bool = True
) -> QuartTrio:
    """Build the Quart app serving ``routes`` (default: every route of ``services.modules``).

    ``direct=False`` sends every request through Quart (the tests compare both lanes).
    """
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
    if any(r.idempotent for r in table) and not any(
        m.name == "idempotency" for m in services.modules
    ):
        raise InvalidConfig("modules", "idempotent routes need the idempotency module")
    app.config["routes"] = table
    app.config["services"] = services
    limits = ClientLimits(options.rate_limit_per_ip, options.rate_limit_per_key)
    app.config["limits"] = limits

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
        direct=_direct_lane(_direct_routes(table), services, limits) if direct else None,
    )

    telemetry = services.telemetry
    if telemetry is not None and telemetry.enabled:
        # Outermost, around the gateway: its refusals (429, 413) are counted too.
        app.asgi_app = telemetry.asgi(app.asgi_app)  # type: ignore[method-assign]  # as above

        @app.before_request
        async def _route_template() -> None:
            rule = request.url_rule
            if rule is not None:
                telemetry.set_route(request.scope, rule.rule)

    @app.errorhandler(Exception)
    async def _problem(exc: Exception) -> Response:
        status, body, headers = _problem_answer(exc, request.path, _state())
        response = Response(body, status=status, content_type=PROBLEM_JSON)
        for name, value in headers.items():
            response.headers[name] = value
        return response

    for route in table:
        app.add_url_rule(
            route.path,
            endpoint=route.endpoint,
            view_func=_view(route, services, limits),
            methods=[route.method],
        )
    return app


class _Policy:
    """What the pipeline needs of a route beyond the route itself, worked out once:
    the service-mode gate's inputs, its flag, whether it keeps stale copies."""

    __slots__ = ("criticality", "flag", "gated", "serve_stale", "writes")

    def __init__(self, route: Route) -> None:
        self.gated = not route.control
        self.criticality = Criticality(route.criticality)
        self.writes = bool(route.writes)
        self.flag = route.flag
        self.serve_stale = route.serve_stale


def _view(route: Route, services: Services, limits: ClientLimits) -> Any:
    policy = _Policy(route)

    async def view(**params: Any) -> Response:
        state = _state()
        assert state is not None  # the gateway runs before every view
        reply = await _handle(
            route,
            policy,
            services,
            limits,
            state,
            params,
            request.headers,
            request.query_string,
            _body,
            request.path,
        )
        payload = reply.body if isinstance(reply.body, bytes) else json_bytes(reply.body)
        response = Response(payload, status=reply.status, content_type=reply.content_type)
        for name, value in reply.headers.items():
            response.headers[name] = value
        return response

    view.__name__ = route.endpoint
    return view


async def _handle(
    route: Route,
    policy: _Policy,
    services: Services,
    limits: ClientLimits,
    state: RequestState,
    params: dict[str, Any],
    headers: Headers,
    query_string: bytes,
    read_body: Callable[[Route], Awaitable[Any]],
    path: str,
) -> Reply:
    """The pipeline after routing, the same in both lanes (see :func:`_direct_lane`):
    mode gate, flag, key, per-key limit, tenant, authorisation, query, body, handler."""
    options = services.options
    board = services.context.mode
    # The service-mode gate: while the node is full, this one attribute check.
    if board.restricted and policy.gated:
        code = board.refusal(policy.criticality, policy.writes)
        if code is not None:
            return _refused(code, board.retry_after, path, state)
    flag = policy.flag
    flags = services.context.flags
    if flag is not None:
        known = flags.get(flag)
        if known is None or not known.enabled:
            raise RequestError("no route matches this URL", status=404, code="route_not_found")
    key = tenant = None
    request_tenant: str | None = None
    if "tenant_id" in params:
        params["tenant_id"] = validate_tenant_id(params["tenant_id"])
    permission = route.permission
    if permission is not None:
        key = await _authenticate(services, state)
        now = trio.current_time()
        state.key_reset = limits.key.admit(key.id, now)
        if state.key_reset is None:
            state.denied = ("key", limits.key.check(key.id, now))
            raise RequestError("too many requests with this key", status=429, code="rate_limited")
        if permission.scope == "tenant":
            header = _text(state.tenant, "X-Tenant")
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
        state.tenant_id = request_tenant or key.tenant_id
    if flag is not None:
        subject = request_tenant
        if subject is None and tenant is not None:
            subject = tenant.id
        if not flags.enabled(flag, tenant=subject, key=key.id if key is not None else None):
            raise RequestError("no route matches this URL", status=404, code="route_not_found")
    query = None if route.query is None else parse_query(query_string, route.query)
    body = None if route.body is None else await read_body(route)
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
        headers=headers,
        query_string=query_string,
    )
    reply: Reply | None = None
    if route.idempotent:
        header = _latin1_text(headers.get(HEADER), HEADER)
        if header is not None:
            reply = await _once(route, call, parse_idempotency_key(header), body, path)
    if reply is None and policy.serve_stale:
        copy_key = (
            request_tenant or (tenant.id if tenant is not None else ""),
            key.role.value if key is not None else "",
            path,
            query_string,
        )
        reply = await _fresh_or_stale(route, call, services.stale, copy_key, board.store_down)
    if reply is None:
        result = await route.handler(call)
        reply = result if isinstance(result, Reply) else Reply(result, route.status)
    if route.method != "GET" and route.tenant_scoped and 200 <= reply.status < 300:
        # Read-your-writes: the outbox position at or after this write's event,
        # for ``min_token`` on the lists and searches served by read models.
        token = await outbox_head(services.store.store)
        reply.headers.setdefault(CONSISTENCY_TOKEN, str(token))
    return reply


async def _fresh_or_stale(
    route: Route, call: Call, stale: StaleResponses, copy_key: Any, store_down: bool
) -> Reply:
    """A ``serve_stale`` read: the handler's answer (kept when 200), or, while the
    store is down or when the handler failed for want of it, the last good copy."""
    if store_down:
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
    if reply.status == 200:
        if not isinstance(reply.body, bytes):  # encoded once: for the client and the copy
            reply = Reply(json_bytes(reply.body), 200, reply.headers, reply.content_type)
        assert isinstance(reply.body, bytes)
        stale.keep(copy_key, reply.body, reply.content_type, reply.headers, trio.current_time())
    return reply


def _refused(code: str, retry_after: int, path: str, state: RequestState) -> Reply:
    """The gate's 503: problem+json with the mode as its code, and ``Retry-After``."""
    problem = Problem(503, code, _REFUSALS.get(code, "the service cannot take this request now"))
    body = problem_body(problem, instance=path, request_id=state.request_id)
    return Reply(body, 503, {"Retry-After": str(retry_after)}, PROBLEM_JSON)


def _stale_answer(stale: StaleResponses, key: Any) -> Reply | None:
    found = stale.find(key, trio.current_time())
    if found is None:
        return None
    copy, age = found
    return Reply(copy.body, 200, stale_headers(copy, age, "store-unavailable"), copy.content_type)


def _answer(route: Route, result: Reply | dict[str, Any] | list[Any]) -> Stored:
    reply = result if isinstance(result, Reply) else Reply(result, route.status)
    payload = reply.body if isinstance(reply.body, bytes) else json_bytes(reply.body)
    return Stored(reply.status, {"Content-Type": reply.content_type, **reply.headers}, payload)


async def _once(route: Route, call: Call, key: str, body: Any, path: str) -> Reply:
    """Answer a request with an ``Idempotency-Key`` (see ``_idempotency``)."""
    assert call.tenant is not None  # idempotent routes are tenant routes
    keys = call.services.context.get(IdempotencyKeys)

    async def respond() -> Stored:
        try:
            return _answer(route, await route.handler(call))
        except Exception as exc:  # answered as its problem, and stored like any answer
            problem = problem_for(exc)
            document = problem_body(problem, instance=path, request_id=call.request_id)
            return Stored(
                problem.status, {"Content-Type": PROBLEM_JSON, **problem.headers}, document
            )

    answer, replayed = await run_once(
        keys,
        call.services.store.store,
        call.tenant.id,
        key,
        fingerprint(route.method, path, body),
        respond,
    )
    headers = dict(answer.headers)
    content_type = headers.pop("Content-Type", "application/json")
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Reply(answer.body, answer.status, headers, content_type)


# ------------------------------------------------------------------ the direct lane


class _ScopeHeaders:
    """The request headers straight from the ASGI scope, as handlers read them
    (case-insensitive ``get`` of the first value, latin-1 text as in Quart)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def get(self, key: str, default: str | None = None) -> str | None:
        wanted = key.lower().encode("latin-1")
        for name, value in self._raw:
            if name.lower() == wanted:
                return value.decode("latin-1")
        return default


def _direct_routes(table: Iterable[Route]) -> dict[str, tuple[Route, _Policy]]:
    """The GET routes the gateway may serve without Quart: every one whose path has no
    parameters (an exact match is exactly what werkzeug's router would pick)."""
    return {
        route.path: (route, _Policy(route))
        for route in table
        if route.method == "GET" and "<" not in route.path
    }


def _direct_lane(
    routes: dict[str, tuple[Route, _Policy]], services: Services, limits: ClientLimits
) -> Callable[[Scope, RequestState, Send], Awaitable[bool]]:
    """Serve a bodiless ``GET`` of a route without parameters in the gateway itself.

    The framework's request context, URL adapter, request and response
    objects cost more than the whole of TrioToK's pipeline on the hot reads
    (a cached tenant, a list page): this lane runs the same :func:`_handle`
    and the same problem mapping as the Quart view, and writes the two ASGI
    messages itself. Anything else (other methods, ``HEAD``, parameters, a
    body, an unknown path) goes to Quart unchanged. ``tests/http/test_direct_lane.py``
    checks both lanes answer byte for byte alike.
    """

    telemetry = services.telemetry
    template = None if telemetry is None or not telemetry.enabled else telemetry.set_route

    async def serve(scope: Scope, state: RequestState, send: Send) -> bool:
        found = routes.get(scope["path"])
        if found is None:
            return False
        route, policy = found
        if template is not None:  # what Quart's before_request hook does in the other lane
            template(scope, route.path)
        try:
            reply = await _handle(
                route,
                policy,
                services,
                limits,
                state,
                {},
                _ScopeHeaders(scope["headers"]),
                scope["query_string"],
                _no_body,
                scope["path"],
            )
            payload = reply.body if isinstance(reply.body, bytes) else json_bytes(reply.body)
            status, kind, extra = reply.status, reply.content_type.encode(), reply.headers
        except Exception as exc:
            status, payload, extra = _problem_answer(exc, scope["path"], state)
            kind = _PROBLEM_JSON
        headers = [(b"content-type", kind), (b"content-length", str(len(payload)).encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})
        return True

    return serve


async def _no_body(route: Route) -> Any:  # pragma: no cover - direct routes declare no body
    raise AssertionError(f"{route.endpoint} has a body but was served by the direct lane")


def _problem_answer(
    exc: Exception, path: str, state: RequestState | None
) -> tuple[int, bytes, dict[str, str]]:
    """Status, problem+json body and headers for ``exc`` (both lanes)."""
    problem = problem_for(exc)
    request_id = state.request_id if state is not None else None
    body = problem_body(problem, instance=path, request_id=request_id)
    headers = dict(problem.headers)
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="triotok"'
    return problem.status, body, headers


def _state() -> RequestState | None:
    scope: Any = request.scope  # a TypedDict in Quart's stubs; the gateway adds its key
    state: RequestState | None = scope.get(SCOPE_KEY)
    return state


async def _authenticate(services: Services, state: RequestState) -> Any:
    header = _text(state.authorization, "Authorization")
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


def _latin1_text(value: str | None, name: str) -> str | None:
    """A header as Quart hands it (latin-1 decoded) as text: strict UTF-8, else a 422."""
    if value is None or value.isascii():
        return value
    return _text(value.encode("latin-1"), name)


def _text(value: bytes | None, name: str) -> str | None:
    """A request header (raw, as the gateway saw it) as text: strict UTF-8, else a 422
    naming the header."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeError:
        raise RequestError(
            f"the {name} header is not valid UTF-8 text",
            status=422,
            code="validation_failed",
            errors=[{"in": "header", "path": name, "message": "is not valid UTF-8 text"}],
        ) from None


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
