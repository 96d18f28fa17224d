"""Strict JSON: what TrioToK accepts, stores and sends.

Rules (``/docs/reference/http-api.md`` documents them as the API's limits):

* nesting at most :data:`MAX_JSON_DEPTH` levels (the outermost array or
  object is level 1), checked before anything is stored;
* numbers are finite: ``NaN``, ``Infinity`` and literals that overflow a
  double (``1e400``) are refused, never turned into infinities;
* every string and object key is storable text (:func:`triotok._text.text_error`).

:func:`loads` applies all of them to a document from outside (a request
body, a row an earlier version wrote); :func:`check` to a decoded value;
:func:`dumps` never writes anything but strict JSON. A leaf module like
``_exceptions``: every layer may use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from ._text import text_error, without_surrogates

__all__ = ("MAX_JSON_DEPTH", "InvalidJson", "InvalidText", "check", "dumps", "loads")

#: Deepest nesting accepted anywhere (documented; 400 ``invalid_json`` beyond).
MAX_JSON_DEPTH = 32


class InvalidJson(ValueError):
    """Not JSON, nested too deep, or a number that is not finite."""


class InvalidText(ValueError):
    """Well-formed JSON holding text that cannot be stored; ``errors`` name each field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} field(s) hold text that cannot be stored")
        self.errors = errors


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not valid JSON")


def _number(text: str) -> int | float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(f"the number {text[:40]} is out of range")
    # JSON Schema counts 1.0 as an integer: callers get an int, exactly as for 1.
    return int(value) if value.is_integer() else value


def loads(document: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode ``document`` under the rules above.

    Raises :class:`InvalidJson` (syntax, depth, numbers) or :class:`InvalidText`.
    """
    try:
        value = json.loads(document, parse_constant=_reject_constant, parse_float=_number)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise InvalidJson(str(exc)[:120]) from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise unless ``value`` (decoded JSON) keeps the rules; text errors come last."""
    errors: list[dict[str, str]] = []
    for item, depth, path in _walk(value):
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidJson(f"nested deeper than {max_depth} levels")
        elif isinstance(item, str):
            message = text_error(item)
            if message is not None:
                errors.append({"path": without_surrogates(path or "/"), "message": message})
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidJson("numbers must be finite")
    if errors:
        raise InvalidText(errors)


def _walk(value: Any) -> Iterator[tuple[Any, int, str]]:
    # Iterative and in document order: depth is bounded by the check, not by the stack.
    # Object keys are yielded as strings at their member's path.
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        yield item, depth, path  # the caller stops here when ``item`` is too deep
        children: list[tuple[Any, int, str]] = []
        if isinstance(item, dict):
            for key, member in item.items():
                child = f"{path}/{_escape(key)}"
                children.append((key, depth, child))
                children.append((member, depth + 1, child))
        elif isinstance(item, list):
            children = [(member, depth + 1, f"{path}/{i}") for i, member in enumerate(item)]
        stack.extend(reversed(children))


def _escape(key: str) -> str:
    # RFC 6901 JSON Pointer.
    return key.replace("~", "~0").replace("/", "~1")


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact strict JSON (``ValueError`` on a non-finite number, never ``Infinity``)."""
    return json.dumps(
        value, separators=(",", ":"), allow_nan=False, default=str, sort_keys=sort_keys
    )
