"""Request validation against the JSON Schemas the routes declare (and OpenAPI publishes).

A deliberately small subset of JSON Schema, enough for request bodies and
query strings: ``type`` (object, string, integer, number, boolean, array),
``properties``, ``required``, ``additionalProperties: false``, ``minLength``,
``maxLength``, ``pattern``, ``minimum``, ``maximum``, ``enum``,
``maxProperties``, ``items``, ``maxItems``. The same dicts go into
``/openapi.json`` unchanged, so what is documented is what is enforced.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ("schema_errors",)

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "null": (type(None),),
}


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def schema_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[dict[str, str]]:
    """Every way ``value`` breaks ``schema``, as ``{"path": "/a/0", "message": ...}``."""
    errors: list[dict[str, str]] = []
    _check(schema, value, path, errors)
    return errors


def _check(schema: dict[str, Any], value: Any, path: str, errors: list[dict[str, str]]) -> None:
    def fail(message: str) -> None:
        errors.append({"path": path or "/", "message": message})

    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        # bool is an int subclass, but true is not a number in JSON.
        ok = any(
            isinstance(value, _TYPES[k]) and (k == "boolean" or not isinstance(value, bool))
            for k in kinds
        )
        if not ok:
            fail(f"expected {' or '.join(kinds)}, got {_json_type(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        fail(f"must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            fail(f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            fail(f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not _pattern(schema["pattern"]).fullmatch(value):
            fail(f"must match {schema['pattern']}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            fail(f"must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            fail(f"must be <= {schema['maximum']}")
    elif isinstance(value, dict):
        _check_object(schema, value, path, errors, fail)
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            fail(f"must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if items is not None:
            for index, item in enumerate(value):
                _check(items, item, f"{path}/{index}", errors)


def _check_object(
    schema: dict[str, Any],
    value: dict[str, Any],
    path: str,
    errors: list[dict[str, str]],
    fail: Any,
) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            errors.append({"path": f"{path}/{name}", "message": "is required"})
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        fail(f"must have at most {schema['maxProperties']} properties")
    for name, item in value.items():
        sub = properties.get(name)
        if sub is not None:
            _check(sub, item, f"{path}/{name}", errors)
        elif schema.get("additionalProperties") is False:
            errors.append({"path": f"{path}/{name}", "message": "is not allowed"})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
