"""The one way a request body becomes a value: strict JSON, refused as problems.

Every route that reads a body goes through :func:`decode_body` (from the
view in ``_app``), before the body's schema is checked and long before
anything is stored. The rules themselves live in :mod:`triotok._json`, so the
store-side readers apply the same ones to rows an earlier version wrote;
this module only maps them to statuses:

* not JSON, nested deeper than :data:`MAX_JSON_DEPTH`, ``NaN``/``Infinity``
  or a number that overflows a double: 400 ``invalid_json``;
* a string or key that is not storable text (a lone surrogate, U+0000): 422
  ``validation_failed`` with ``errors`` naming each field by JSON Pointer.

Kept apart from ``_schema`` (the schema subset), which checks the decoded
value's shape and may be replaced without touching these rules.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import RequestError
from .._json import MAX_JSON_DEPTH, InvalidJson, InvalidText, loads

__all__ = ("MAX_JSON_DEPTH", "decode_body")


def decode_body(raw: bytes) -> Any:
    """The decoded body, or a :class:`RequestError` (400 ``invalid_json`` / 422)."""
    if not raw:
        raise RequestError("the request body is empty", status=400, code="invalid_json")
    try:
        return loads(raw)
    except InvalidJson as exc:
        raise RequestError(
            f"the body is not valid JSON: {exc}", status=400, code="invalid_json"
        ) from None
    except InvalidText as exc:
        raise RequestError(
            "the body holds text that cannot be stored",
            status=422,
            code="validation_failed",
            errors=exc.errors,
        ) from None
