"""``/openapi.json``: OpenAPI 3.1 generated from the route table (it cannot drift).

Made for client generators as much as for people: every body schema is a
named component (``Tenant``, ``ApiKey``, ``AuditEntry``, ``Problem``, ...)
built by ``msgspec.json.schema_components`` from the routes' own models and
referenced by ``$ref``; every operation has a readable ``operationId``
(``getCurrentTenant``); every request and response body has an example.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ..modules.tenants import TENANT_ID_PATTERN
from ._models import Problem, example_of, query_spec
from ._problems import PROBLEM_JSON
from ._routes import Call, Route
from ._system_models import OpenApiDocument

__all__ = ("ROUTES", "openapi_document")

REF = "#/components/schemas/{name}"
_STRING = {"type": "string"}
# Anchored: a JSON Schema pattern matches anywhere in the string, the server whole ids only.
_PATH_PARAMS = {"tenant_id": {"type": "string", "pattern": f"^{TENANT_ID_PATTERN}$"}}
_DESCRIPTIONS = {
    400: "Bad request (invalid tenant id, query or JSON)",
    401: "Missing or invalid API key",
    402: "Payment declined (nothing was charged)",
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
# The example problem of each status: (title, code, detail).
_PROBLEMS = {
    400: ("Bad Request", "invalid_query", "query parameter 'limit' must be an integer (-?[0-9]+)"),
    401: ("Unauthorized", "missing_api_key", "an API key is required"),
    402: ("Payment Required", "payment_declined", "the card was declined"),
    403: ("Forbidden", "forbidden", "this key's role may not do this"),
    404: ("Not Found", "not_found", "no tenant 'acme'"),
    409: ("Conflict", "conflict", "the tenant was changed meanwhile (version 2, expected 1)"),
    413: ("Content Too Large", "payload_too_large", "the body is larger than 1048576 bytes"),
    415: ("Unsupported Media Type", "unsupported_media_type", "send the body as application/json"),
    422: ("Unprocessable Content", "validation_failed", "the body does not match the schema"),
    429: ("Too Many Requests", "rate_limited", "too many requests with this key"),
    500: ("Internal Server Error", "internal_error", "an internal error occurred"),
    503: ("Service Unavailable", "unavailable", "a required service is unavailable; retry"),
}


def _models(routes: Iterable[Route]) -> list[Any]:
    """Every model the routes publish, ``Problem`` first, each once, in order."""
    found: dict[int, Any] = {id(Problem): Problem}
    for route in routes:
        for model in (route.body, route.response):
            if model is not None:
                found.setdefault(id(model), model)
    return list(found.values())


def openapi_document(routes: tuple[Route, ...], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    models = _models(routes)
    refs, schemas = msgspec.json.schema_components(models, ref_template=REF)
    schema_of = {id(model): ref for model, ref in zip(models, refs, strict=True)}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(
            route, schema_of
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "TrioToK", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _media(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return media


def _problem_example(route: Route, status: int) -> dict[str, Any]:
    title, code, detail = _PROBLEMS.get(status, ("Error", "error", "the request failed"))
    example: dict[str, Any] = {
        "type": f"urn:triotok:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "instance": route.openapi_path,
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    if status == 422:
        example["errors"] = Problem.EXAMPLE["errors"]
    return example


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(route.path_schemas.get(name) or _PATH_PARAMS.get(name, _STRING)),
        }
        for name in route.path_params
    ]
    if route.query is not None:
        for param in query_spec(route.query).parameters.values():
            params.append(
                {
                    "name": param.name,
                    "in": "query",
                    "required": param.required,
                    "schema": param.schema,
                }
            )
    if route.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key and body gets the first answer"
                " (kept 24 h per tenant); the same key with another body is a 422",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            }
        )
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
    return params


def _operation(route: Route, schema_of: dict[int, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    params = _parameters(route)
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
            "content": {
                "application/json": _media(schema_of[id(route.body)], example_of(route.body))
            },
        }
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        example = route.example if route.example is not None else example_of(route.response)
        success["content"] = {route.content_type: _media(schema_of[id(route.response)], example)}
    responses: dict[str, Any] = {str(route.status): success}
    for status in route.all_errors():
        problem = _media(schema_of[id(Problem)], _problem_example(route, status))
        responses[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {PROBLEM_JSON: problem},
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
        operation_id="getOpenApi",
        response=OpenApiDocument,
    ),
)
