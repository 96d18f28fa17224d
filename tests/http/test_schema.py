"""The request-schema subset that both validates bodies and feeds /openapi.json."""

from __future__ import annotations

from typing import Any

import pytest

from triotok.http._schema import schema_errors

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "[a-z]{1,3}"},
        "n": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "role": {"type": "string", "enum": ["a", "b"]},
        "opt": {"type": ["string", "null"]},
    },
    "required": ["id"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("value", "paths"),
    [
        ({"id": "ab"}, []),
        ({"id": "ab", "n": 3, "tags": ["x"], "role": "a", "opt": None}, []),
        ({}, ["/id"]),
        ({"id": "abcd"}, ["/id"]),
        ({"id": "a", "n": True}, ["/n"]),
        ({"id": "a", "n": 1.5}, ["/n"]),
        ({"id": "a", "n": 9}, ["/n"]),
        ({"id": "a", "tags": ["x", 1]}, ["/tags/1"]),
        ({"id": "a", "tags": ["x", "y", "z"]}, ["/tags"]),
        ({"id": "a", "role": "c"}, ["/role"]),
        ({"id": "a", "zzz": 1}, ["/zzz"]),
        ([], ["/"]),
        ("x", ["/"]),
    ],
)
def test_schema_errors(value: Any, paths: list[str]) -> None:
    assert [e["path"] for e in schema_errors(SCHEMA, value)] == paths
