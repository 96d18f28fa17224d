"""Signing webhook deliveries (HMAC-SHA256), and checking a signature on the receiving side.

Each delivery carries ``X-Triotok-Signature: t=<unix seconds>,v1=<hex>``
where ``<hex>`` is ``HMAC-SHA256(secret, "<t>.<body>")``. A receiver
recomputes it with the endpoint's secret, compares in constant time, and
refuses a timestamp older than its tolerance (a replayed delivery)::

    verify(secret, request.headers["X-Triotok-Signature"], body, now=time.time())
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ("SIGNATURE_HEADER", "sign", "verify")

SIGNATURE_HEADER = "X-Triotok-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of ``now``."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))
