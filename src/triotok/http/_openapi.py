"""``/openapi.json``: OpenAPI 3.1 generated from the route table (it cannot drift)."""

from __future__ import annotations

from typing import Any

from ..modules.tenants import TENANT_ID_PATTERN
from ._routes import Call, Route

__all__ = ("ROUTES", "openapi_document")

_PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "code", "detail"],
}
_STRING = {"type": "string"}
# Anchored: a JSON Schema pattern matches anywhere in the string, the server whole ids only.
_PATH_PARAMS = {"tenant_id": {"type": "string", "pattern": f"^{TENANT_ID_PATTERN}$"}}
_DESCRIPTIONS = {
    400: "Bad request (invalid tenant id, query or JSON)",
    401: "Missing or invalid API key",
    403: "Not allowed (other tenant, role lacks the permission, tenant inactive)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Body does not match the schema",
    429: "Rate limited (see Retry-After and RateLimit headers)",
    500: "Bug (no details are ever disclosed)",
    503: "A required service is unavailable; retry",
}


def openapi_document(routes: tuple[Route, ...], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "TrioToK", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Problem": _PROBLEM},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.endpoint.replace(" ", "_").replace("/", "_").strip("_"),
        "summary": route.summary,
        "tags": [route.tag],
    }
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMS.get(name, _STRING)}
        for name in route.path_params
    ]
    for name, schema in route.query.items():
        required = name in route.query_required
        params.append({"name": name, "in": "query", "required": required, "schema": schema})
    if route.tenant_scoped:
        params.append(
            {
                "name": "X-Tenant",
                "in": "header",
                "required": False,
                "description": "The tenant (defaults to the key's tenant)",
                "schema": _PATH_PARAMS["tenant_id"],
            }
        )
    if params:
        op["parameters"] = params
    if route.permission is None:
        op["security"] = []
    else:
        op["security"] = [{"apiKey": []}]
        op["x-permission"] = {
            "resource": route.permission.resource,
            "action": route.permission.action,
            "scope": route.permission.scope,
        }
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        success["content"] = {route.content_type: {"schema": route.response}}
    responses: dict[str, Any] = {str(route.status): success}
    for status in route.all_errors():
        responses[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    op["responses"] = responses
    return op


async def openapi(call: Call) -> dict[str, Any]:
    return openapi_document(call.services.routes, version=call.services.version)


ROUTES = (
    Route(
        "GET",
        "/openapi.json",
        openapi,
        "This API's OpenAPI 3.1 description",
        "meta",
        None,
        response={"type": "object"},
    ),
)
