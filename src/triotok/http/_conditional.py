"""Conditional requests and keyset cursors, shared by every module's routes.

* A resource's version is its strong entity tag (``ETag: "3"``).
* ``If-Match`` names the version a write is based on; writes that must name
  one (``PATCH``, ``DELETE``) take it from ``If-Match`` or a ``version`` in the
  body, and answer 428 (:class:`PreconditionRequired`) without either.
* ``If-None-Match`` with the current tag lets a ``GET`` answer 304.
* A list's cursor is opaque to clients: the last id of the page as 32 hex
  digits, so any such value is a valid position ("ids after this one").
"""

from __future__ import annotations

import uuid
from typing import Any

from .._exceptions import InvalidInput, PreconditionRequired
from ._routes import Call, Reply

__all__ = (
    "UUID_PATH_SCHEMA",
    "decode_cursor",
    "encode_cursor",
    "expected_version",
    "if_match",
    "not_modified",
)

#: The JSON Schema of a UUID path parameter (``Route(path_schemas={"id": UUID_PATH_SCHEMA})``).
UUID_PATH_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}

_ONE_VERSION = 'If-Match must name one version, e.g. If-Match: "3"'


def _etags(header: str | None) -> set[str]:
    if header is None:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def if_match(call: Call) -> int | None:
    """The version the request's ``If-Match`` names (``None`` without one or for ``*``)."""
    header = call.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tags = _etags(header)
    if len(tags) != 1:
        raise InvalidInput(_ONE_VERSION, field="If-Match")
    [tag] = tags
    digits = tag.strip('"')
    if not (tag.startswith('"') and tag.endswith('"') and digits.isascii() and digits.isdigit()):
        raise InvalidInput(_ONE_VERSION, field="If-Match")
    return int(digits)


def expected_version(call: Call, in_body: int | None) -> int:
    """What a ``PATCH``/``DELETE`` compares: ``If-Match`` or the body's ``version`` (else 428)."""
    from_header = if_match(call)
    if from_header is not None and in_body is not None and from_header != in_body:
        raise InvalidInput("If-Match and version name different versions", field="version")
    expected = from_header if from_header is not None else in_body
    if expected is None:
        raise PreconditionRequired(
            'send the version you read (If-Match: "<version>" or "version" in the body)'
        )
    return expected


def not_modified(call: Call, etag: str) -> Reply | None:
    """A 304 when the request's ``If-None-Match`` names ``etag``, else ``None``."""
    if etag in _etags(call.headers.get("If-None-Match")):
        return Reply(b"", 304, {"ETag": etag})
    return None


def encode_cursor(after: str | None) -> str | None:
    """The cursor continuing after the id ``after`` (``None``: the last page)."""
    return None if after is None else uuid.UUID(after).hex


def decode_cursor(cursor: str) -> str:
    """The id a cursor continues after; :class:`InvalidInput` for anything else."""
    try:
        return str(uuid.UUID(hex=cursor))
    except ValueError:
        raise InvalidInput("cursor is not one this API handed out", field="cursor") from None
