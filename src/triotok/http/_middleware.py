"""Per-request policies: request ids, trace context, client identity, limits, headers.

Kept free of Quart so the policies are plain functions over strings and
header maps, tested without a server.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from ..supervision import RateDecision, RateLimit, RateLimiter
from ..transport import SchemaError, validate_traceparent

__all__ = (
    "SCOPE_KEY",
    "SECURITY_HEADERS",
    "ClientLimits",
    "Gateway",
    "RequestState",
    "client_ip",
    "is_tls",
    "rate_limit_headers",
    "request_id_from",
    "security_headers",
    "traceparent_from",
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: Sent with every response. The API serves JSON only, so the CSP forbids everything.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HSTS = "max-age=63072000; includeSubDomains"


class HeaderMap(Protocol):
    """What both a dict and werkzeug's ``Headers`` offer."""

    def __contains__(self, name: str, /) -> bool: ...

    def __setitem__(self, name: str, value: str, /) -> None: ...


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-Id`` when well-formed, else a fresh one."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


def traceparent_from(header: str | None) -> str | None:
    """A valid W3C ``traceparent``, or ``None`` (an invalid one starts a new trace)."""
    if header is None:
        return None
    try:
        return validate_traceparent(header.strip())
    except SchemaError:
        return None


def _hop(header: str | None, hops: int) -> str | None:
    # Each trusted proxy appends one entry; the entry ``hops`` from the right was
    # written by the outermost trusted proxy. Anything left of it the client chose.
    if not header:
        return None
    entries = [entry.strip() for entry in header.split(",")]
    if len(entries) < hops:
        return None
    return entries[-hops] or None


def client_ip(
    remote_addr: str | None, forwarded_for: str | None, *, trust_proxy: bool, hops: int = 1
) -> str:
    """The client address.

    Behind ``hops`` trusted proxies (``trust_proxy``), the ``X-Forwarded-For``
    entry the outermost of them appended (the ``hops``-th from the right);
    else, or when the header has fewer entries, the connection's address.
    """
    if trust_proxy:
        hop = _hop(forwarded_for, hops)
        if hop is not None:
            return hop[:100]
    return remote_addr or "unknown"


def is_tls(
    scheme: str | None, forwarded_proto: str | None, *, trust_proxy: bool, hops: int = 1
) -> bool:
    """Whether the client's connection is TLS: ``X-Forwarded-Proto`` counts only behind a
    trusted proxy (and only the entry it wrote, as for :func:`client_ip`)."""
    if scheme == "https":
        return True
    if not trust_proxy:
        return False
    return (_hop(forwarded_proto, hops) or "").lower() == "https"


def security_headers(
    headers: HeaderMap,
    *,
    scheme: str,
    forwarded_proto: str | None,
    trust_proxy: bool = False,
    hops: int = 1,
) -> None:
    """Add the security headers; HSTS only when the client connection is TLS."""
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if is_tls(scheme, forwarded_proto, trust_proxy=trust_proxy, hops=hops):
        headers["Strict-Transport-Security"] = HSTS


class ClientLimits:
    """Per-IP and per-API-key GCRA limits, ``per_minute`` requests each."""

    def __init__(self, per_ip: int, per_key: int) -> None:
        self.ip = RateLimiter(RateLimit(per_ip, per_ip / 60.0), max_keys=100_000)
        self.key = RateLimiter(RateLimit(per_key, per_key / 60.0), max_keys=100_000)


def rate_limit_headers(decisions: Mapping[str, RateDecision], headers: HeaderMap) -> None:
    """IETF ``RateLimit``/``RateLimit-Policy`` headers (one item per policy) and Retry-After.

    ``RateLimit-Policy: "ip";q=100;w=60`` and ``RateLimit: "ip";r=42;t=3``.
    """
    if not decisions:
        return
    policies, limits = [], []
    retry_after = 0.0
    for name, decision in decisions.items():
        # Every limit is "per minute" (ClientLimits), hence the 60 s window.
        policies.append(f'"{name}";q={decision.limit};w=60')
        limits.append(f'"{name}";r={decision.remaining};t={math.ceil(decision.reset_after)}')
        if not decision.allowed:
            retry_after = max(retry_after, decision.retry_after)
    headers["RateLimit-Policy"] = ", ".join(policies)
    headers["RateLimit"] = ", ".join(limits)
    if retry_after > 0:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))


# ------------------------------------------------------------------ the ASGI gateway

# Loosely typed on purpose: frameworks type scopes as TypedDict unions (Quart) that
# no single precise signature accepts, and the gateway touches a handful of keys.
Scope = Any
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]

#: Where the gateway keeps its per-request state in the ASGI scope.
SCOPE_KEY = "triotok"

_STATIC_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_STATIC_NAMES = frozenset(name for name, _ in _STATIC_HEADERS)
_HSTS = (b"strict-transport-security", HSTS.encode())


class RequestState:
    """Per-request facts the gateway establishes and the views read (``scope["triotok"]``).

    ``authorization`` and ``tenant`` are the raw ``Authorization`` and
    ``X-Tenant`` header values (the first of each), read in the gateway's one
    pass over the headers so views need not look them up again. The rate
    limits a request passed are kept as plain floats (``ip_reset``,
    ``key_reset``: seconds until that bucket is full again); only a refusal
    keeps a full decision (``denied``). ``tenant_id`` is the tenant the
    request acts for, once authorised (logs and spans read it).
    """

    __slots__ = (
        "authorization",
        "denied",
        "ip_reset",
        "key_reset",
        "request_id",
        "tenant",
        "tenant_id",
        "traceparent",
    )

    def __init__(self, request_id: str, traceparent: str | None) -> None:
        self.request_id = request_id
        self.traceparent = traceparent
        self.authorization: bytes | None = None
        self.tenant: bytes | None = None
        self.ip_reset: float | None = None
        self.key_reset: float | None = None
        self.denied: tuple[str, RateDecision] | None = None
        self.tenant_id: str | None = None

    @property
    def limits(self) -> dict[str, RateDecision]:
        """The refusal, if any, by limit name (``{}`` when every limit passed)."""
        return {} if self.denied is None else {self.denied[0]: self.denied[1]}


def _allowed(limiter: RateLimiter, reset_after: float) -> RateDecision:
    capacity = limiter.rate.capacity
    return RateDecision(True, limiter.remaining(reset_after), capacity, reset_after, 0.0)


class Gateway:
    """ASGI middleware in front of the app: runs before routing, for every request.

    Request id and ``traceparent``, the per-IP rate limit and the declared body
    size are settled here, so floods and oversized uploads are refused before
    the framework does any work; every response (the app's, a problem, or
    this gateway's own refusals) gets the security, ``X-Request-Id`` and
    ``RateLimit`` headers as plain byte pairs.

    ``direct``, when given, may serve a bodiless ``GET`` itself (it answers
    whether it did); everything else goes to ``app``.
    """

    def __init__(
        self,
        app: AsgiApp,
        limits: ClientLimits,
        *,
        max_body_bytes: int,
        trust_proxy: bool,
        trusted_proxy_hops: int = 1,
        refuse: Callable[[int, str, str, str, str], bytes],
        direct: Callable[[Scope, RequestState, Send], Awaitable[bool]] | None = None,
    ) -> None:
        self._app = app
        self._direct = direct
        self._limits = limits
        self._max_body = max_body_bytes
        self._trust_proxy = trust_proxy
        self._hops = trusted_proxy_hops
        self._refuse = refuse
        ip_policy = f'"ip";q={limits.ip.rate.capacity};w=60'
        self._policy_ip = (b"ratelimit-policy", ip_policy.encode())
        both = f'{ip_policy}, "key";q={limits.key.rate.capacity};w=60'
        self._policy_both = (b"ratelimit-policy", both.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = traceparent = forwarded_for = forwarded_proto = None
        length = authorization = tenant = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                # Several header lines are one list, in order (RFC 9110 5.3).
                hops = value.decode("latin-1")
                forwarded_for = hops if forwarded_for is None else f"{forwarded_for}, {hops}"
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
                forwarded_proto = (
                    proto if forwarded_proto is None else f"{forwarded_proto}, {proto}"
                )
            elif name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"x-tenant":
                if tenant is None:
                    tenant = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        state = RequestState(request_id_from(request_id), traceparent_from(traceparent))
        state.authorization = authorization
        state.tenant = tenant
        scope[SCOPE_KEY] = state
        tls = is_tls(
            scope.get("scheme"), forwarded_proto, trust_proxy=self._trust_proxy, hops=self._hops
        )

        # hypercorn 0.18 may leave a keep-alive connection hanging when the response
        # ends before the request body was read (a 401/413/429 refusal does not read
        # it): such responses close the connection instead.
        body_pending = chunked or (length is not None and length.strip() not in (b"", b"0"))

        async def receive_tracking() -> Any:
            nonlocal body_pending
            message = await receive()
            if message.get("type") != "http.request" or not message.get("more_body", False):
                body_pending = False
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                if present.isdisjoint(_STATIC_NAMES):
                    headers += _STATIC_HEADERS
                else:
                    headers += [h for h in _STATIC_HEADERS if h[0] not in present]
                if body_pending and b"connection" not in present:
                    headers.append((b"connection", b"close"))
                if tls:
                    headers.append(_HSTS)
                headers.append((b"x-request-id", state.request_id.encode()))
                headers += self._rate_headers(state)
                message = {**message, "headers": headers}
            await send(message)

        client = scope.get("client")
        ip = client_ip(
            client[0] if client else None,
            forwarded_for,
            trust_proxy=self._trust_proxy,
            hops=self._hops,
        )
        now = trio.current_time()
        state.ip_reset = self._limits.ip.admit(ip, now)
        if state.ip_reset is None:
            state.denied = ("ip", self._limits.ip.check(ip, now))
            await self._answer(
                send_with_headers, scope, 429, "rate_limited", "too many requests from this address"
            )
            return
        if length is not None:
            try:
                too_big = int(length) > self._max_body
            except ValueError:
                too_big = False  # hypercorn rejects a malformed Content-Length itself
            if too_big:
                await self._answer(
                    send_with_headers,
                    scope,
                    413,
                    "payload_too_large",
                    f"the request body exceeds {self._max_body} bytes",
                )
                return
        if (
            self._direct is not None
            and not body_pending
            and scope["method"] == "GET"
            and await self._direct(scope, state, send_with_headers)
        ):
            return
        await self._app(scope, receive_tracking if body_pending else receive, send_with_headers)

    def _rate_headers(self, state: RequestState) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy``/``RateLimit`` (and ``Retry-After`` on a refusal), as for
        :func:`rate_limit_headers`, formatted straight from the request's floats."""
        if state.denied is not None:
            name, decision = state.denied
            decisions: dict[str, RateDecision] = {}
            for limit, reset, limiter in (
                ("ip", state.ip_reset, self._limits.ip),
                ("key", state.key_reset, self._limits.key),
            ):
                if limit == name:
                    decisions[name] = decision
                elif reset is not None:
                    decisions[limit] = _allowed(limiter, reset)
            extra: dict[str, str] = {}
            rate_limit_headers(decisions, extra)
            return [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        ip = state.ip_reset
        if ip is None:
            return []
        ip_left = self._limits.ip.remaining(ip)
        key = state.key_reset
        if key is None:
            return [
                self._policy_ip,
                (b"ratelimit", f'"ip";r={ip_left};t={math.ceil(ip)}'.encode()),
            ]
        key_left = self._limits.key.remaining(key)
        value = f'"ip";r={ip_left};t={math.ceil(ip)}, "key";r={key_left};t={math.ceil(key)}'
        return [self._policy_both, (b"ratelimit", value.encode())]

    async def _answer(self, send: Send, scope: Scope, status: int, code: str, detail: str) -> None:
        state: RequestState = scope[SCOPE_KEY]
        body = self._refuse(status, code, detail, scope.get("path", ""), state.request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
