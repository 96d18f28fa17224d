"""Per-request policies: request ids, trace context, client identity, limits, headers.

Kept free of Quart so the policies are plain functions over strings and
header maps, tested without a server.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from typing import Protocol

from ..supervision import RateDecision, RateLimit, RateLimiter
from ..transport import SchemaError, validate_traceparent

__all__ = (
    "SECURITY_HEADERS",
    "ClientLimits",
    "client_ip",
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
    return uuid.uuid4().hex


def traceparent_from(header: str | None) -> str | None:
    """A valid W3C ``traceparent``, or ``None`` (an invalid one starts a new trace)."""
    if header is None:
        return None
    try:
        return validate_traceparent(header.strip())
    except SchemaError:
        return None


def client_ip(remote_addr: str | None, forwarded_for: str | None, *, trust_proxy: bool) -> str:
    """The client address; ``X-Forwarded-For``'s first hop only behind a trusted proxy."""
    if trust_proxy and forwarded_for:
        first = forwarded_for.split(",", 1)[0].strip()
        if first:
            return first
    return remote_addr or "unknown"


def security_headers(headers: HeaderMap, *, scheme: str, forwarded_proto: str | None) -> None:
    """Add the security headers; HSTS only when the client connection is TLS."""
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if scheme == "https" or (forwarded_proto or "").split(",", 1)[0].strip().lower() == "https":
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
