"""Errors as ``application/problem+json`` (RFC 9457) with a stable ``code``.

:func:`problem_for` maps any exception to ``(status, code, title, detail,
headers)``: our exception tree by class (its ``code`` is the stable key),
werkzeug's HTTP exceptions (routing 404/405, 413) by status, and anything
else to a 500 ``internal_error`` whose detail says nothing about the cause:
the stack trace goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import (
    ActorCrashed,
    ActorError,
    ActorNotFound,
    AskTimeout,
    CircuitOpen,
    Conflict,
    ConflictError,
    DependencyUnavailable,
    DomainError,
    Forbidden,
    InvalidConfig,
    InvalidInput,
    MailboxFull,
    NotFound,
    PaymentRefused,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    RequestError,
    SchemaError,
    SchemaTooNew,
    StoreUnavailable,
    StreamUnavailable,
    TriotokError,
    Unauthenticated,
)
from .._json import dumps

__all__ = ("PROBLEM_JSON", "Problem", "problem_body", "problem_for")

logger = logging.getLogger("triotok.http")

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# werkzeug HTTP exceptions: status -> our stable code.
_HTTP_CODES = {
    400: "bad_request",
    404: "route_not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}

# Our tree: the first matching class (most specific first) gives the status.
# Domain errors say what went wrong in the module's words; only this table
# says which status that is.
_DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (InvalidInput, 400),
    (Conflict, 409),
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
    (PaymentRefused, 402),
    (DependencyUnavailable, 503),
)

_STATUS: tuple[tuple[type[TriotokError], int], ...] = (
    (NotFound, 404),
    (ConflictError, 409),
    (StoreUnavailable, 503),
    (StreamUnavailable, 503),
    (SchemaTooNew, 503),
    (CircuitOpen, 503),
    (RateLimited, 429),
    (MailboxFull, 503),
    (AskTimeout, 503),
    (ActorNotFound, 404),
    (ActorCrashed, 500),
    (ActorError, 503),
    (InvalidConfig, 400),
    (SchemaError, 422),
)


@dataclass(slots=True)
class Problem:
    """What the client is told about one error."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return _TITLES.get(self.status, "Error")


def problem_for(exc: BaseException) -> Problem:
    """The client-safe description of ``exc`` (logs unexpected errors with their trace)."""
    if isinstance(exc, RequestError):
        return Problem(exc.status, exc.code, exc.detail, _retry_after(exc), dict(exc.extra))
    if isinstance(exc, DomainError):
        status = next((s for cls, s in _DOMAIN_STATUS if isinstance(exc, cls)), 400)
        return Problem(status, exc.code, exc.detail, _retry_after(exc), dict(exc.extra))
    if isinstance(exc, TriotokError):
        status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 500)
        headers = _retry_after(exc)
        if status >= 500 and not exc.retryable:
            logger.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            return Problem(status, "internal_error", "the server failed to handle this request")
        if isinstance(
            exc, ActorError | StoreUnavailable | StreamUnavailable | SchemaTooNew | CircuitOpen
        ):
            # The message names internals (actor paths, database URLs): log it, say less.
            logger.warning("request failed: %s: %s", type(exc).__name__, exc)
            return Problem(status, exc.code, "a required service is unavailable; retry", headers)
        return Problem(status, exc.code, str(exc), headers)
    http_status = getattr(exc, "code", None)
    if _is_http_exception(exc) and isinstance(http_status, int):
        status = http_status
        code = _HTTP_CODES.get(status, "http_error")
        headers = {}
        valid = getattr(exc, "valid_methods", None)
        if status == 405 and valid:
            headers["Allow"] = ", ".join(sorted(valid))
        detail = {
            404: "no route matches this URL",
            405: "this route does not accept this method",
            408: "the request body did not arrive in time",
            413: "the request body is too large",
        }.get(status, _TITLES.get(status, "HTTP error"))
        return Problem(status, code, detail, headers)
    logger.error("unhandled error in a request", exc_info=exc)
    return Problem(500, "internal_error", "the server failed to handle this request")


def _retry_after(exc: TriotokError) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) for a retryable error, else nothing."""
    if not exc.retryable:
        return {}
    retry_after = getattr(exc, "retry_after", None)
    seconds = retry_after if isinstance(retry_after, int | float) else 1.0
    if not math.isfinite(seconds):
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _is_http_exception(exc: BaseException) -> bool:
    from werkzeug.exceptions import HTTPException

    return isinstance(exc, HTTPException)


def problem_body(problem: Problem, *, instance: str, request_id: str | None) -> bytes:
    """The JSON document of a problem."""
    doc: dict[str, Any] = {
        "type": f"urn:triotok:problem:{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
        "instance": instance,
    }
    if request_id is not None:
        doc["request_id"] = request_id
    for key, value in problem.extra.items():
        doc.setdefault(key, value)
    return dumps(doc).encode()
