"""What crosses the pipe besides events: errors, requests, responses, HTTP replies.

An error travels as ``{"type", "code", "message", ...}``. On the other side
only a known set of classes is raised again as itself (the domain errors a
handler may answer with, and the plugin errors); anything else becomes a
:class:`PluginCrashed` naming the original type, so a child cannot make the
platform raise an arbitrary exception.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._exceptions import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    TriotokError,
)
from ._api import HttpReply, PluginRequest, PluginResponse
from ._errors import (
    CapabilityDenied,
    PluginCrashed,
    PluginError,
    PluginTimeout,
    PluginUnavailable,
)

__all__ = (
    "error_from_wire",
    "error_to_wire",
    "reply_from_wire",
    "reply_to_wire",
    "request_from_wire",
    "request_to_wire",
    "response_from_result",
)

_DOMAIN: dict[str, type[DomainError]] = {
    cls.__name__: cls
    for cls in (InvalidInput, Forbidden, Conflict, PreconditionFailed, PreconditionRequired)
}
_NOT_FOUND = "NotFound"
_PLUGIN: dict[str, type[PluginError]] = {
    cls.__name__: cls for cls in (PluginTimeout, PluginUnavailable, PluginCrashed)
}


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": type(exc).__name__,
        "code": getattr(exc, "code", "error") if isinstance(exc, TriotokError) else "error",
        "message": str(exc)[:2000],
    }
    if isinstance(exc, CapabilityDenied):
        data.update(
            plugin=exc.plugin, capability=exc.capability, target=exc.target, message=exc.message
        )
    elif isinstance(exc, PluginError):
        data["message"] = exc.message[:2000]
    elif isinstance(exc, DomainError):
        data["message"] = exc.detail[:2000]
        field = exc.extra.get("field")
        if isinstance(field, str):
            data["field"] = field
    return data


def error_from_wire(plugin: str, data: Any) -> Exception:
    if not isinstance(data, dict):
        return PluginCrashed(plugin, "an error without a description")
    kind, message = str(data.get("type", "")), str(data.get("message", ""))[:2000]
    if kind == "CapabilityDenied":
        reason = ""
        return CapabilityDenied(
            plugin, str(data.get("capability", "?")), str(data.get("target", "?")), reason
        )
    if kind == _NOT_FOUND:
        return NotFound(message)
    domain = _DOMAIN.get(kind)
    if domain is not None:
        extra = {"field": data["field"]} if isinstance(data.get("field"), str) else {}
        return domain(message, code=str(data.get("code", domain.code)), **extra)
    known = _PLUGIN.get(kind)
    if known is not None:
        return known(plugin, message)
    return PluginCrashed(plugin, f"{kind}: {message}" if kind else message)


def request_to_wire(request: PluginRequest) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "params": dict(request.params),
        "query": msgspec.to_builtins(request.query),
        "body": msgspec.to_builtins(request.body),
        "tenant": request.tenant,
        "principal": request.principal,
        "role": request.role,
        "request_id": request.request_id,
    }


def request_from_wire(data: dict[str, Any], body_type: Any, query_type: Any) -> PluginRequest:
    body, query = data.get("body"), data.get("query")
    if body_type is not None and body is not None:
        body = msgspec.convert(body, body_type)
    if query_type is not None and query is not None:
        query = msgspec.convert(query, query_type)
    return PluginRequest(
        method=str(data["method"]),
        path=str(data["path"]),
        params={str(k): str(v) for k, v in dict(data.get("params") or {}).items()},
        query=query,
        body=body,
        tenant=str(data["tenant"]),
        principal=str(data["principal"]),
        role=str(data["role"]),
        request_id=str(data["request_id"]),
    )


def response_from_result(result: Any, status: int) -> PluginResponse:
    """A handler's return value as a response (a bare body gets the endpoint's status)."""
    if isinstance(result, PluginResponse):
        return PluginResponse(msgspec.to_builtins(result.body), result.status, dict(result.headers))
    return PluginResponse(msgspec.to_builtins(result), status, {})


def reply_to_wire(reply: HttpReply) -> dict[str, Any]:
    return {"status": reply.status, "headers": dict(reply.headers), "body": reply.body}


def reply_from_wire(data: dict[str, Any]) -> HttpReply:
    return HttpReply(
        int(data["status"]),
        {str(k): str(v) for k, v in dict(data.get("headers") or {}).items()},
        bytes(data.get("body") or b""),
    )
