"""Query strings: the declared parameters, parsed exactly as ``/openapi.json`` says.

A route declares its parameters as a msgspec Struct (one field each, see
``_models.query_spec``); the handler gets an instance of it as ``call.query``.

* Every declared parameter is single-valued: given twice it is a 400
  ``invalid_query`` (never silently the first or the last).
* Integers are ASCII ``-?[0-9]+`` (at most 19 digits), nothing ``int()``
  would also take (``+5``, `` 5``, ``1_0``, Arabic-Indic digits); then the Struct's bounds apply.
* Values are percent-decoded as strict UTF-8: bytes that are not UTF-8 are a
  422 ``validation_failed`` naming the parameter (``{"in": "query"}``),
  never replaced by U+FFFD behind the client's back.

Parameters a route does not declare are ignored.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from msgspec import Struct

from .._exceptions import RequestError
from ._models import convert, query_spec

__all__ = ("parse_query",)

_INTEGER = re.compile(r"-?[0-9]{1,19}")


def _invalid(detail: str, **extra: Any) -> RequestError:
    return RequestError(detail, status=400, code="invalid_query", **extra)


def _decode(raw: bytes) -> str | None:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_query(query_string: bytes, model: type[Struct]) -> Any:
    """The declared parameters of ``query_string`` as a ``model``, typed and validated."""
    declared = query_spec(model).parameters
    raw: dict[str, str] = {}
    for piece in query_string.split(b"&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition(b"=")
        name = _decode(raw_name)
        if name is None or name not in declared:
            continue
        value = _decode(raw_value)
        if value is None:
            raise RequestError(
                f"query parameter {name!r} is not valid UTF-8 text",
                status=422,
                code="validation_failed",
                errors=[{"in": "query", "path": name, "message": "is not valid UTF-8 text"}],
            )
        if name in raw:
            raise _invalid(f"query parameter {name!r} is given more than once")
        raw[name] = value
    values: dict[str, Any] = {}
    for name, text in raw.items():
        if declared[name].integer:
            if not _INTEGER.fullmatch(text):
                raise _invalid(f"query parameter {name!r} must be an integer (-?[0-9]+)")
            values[name] = int(text)
        else:
            values[name] = text
    return convert(model, values, status=400, code="invalid_query")
