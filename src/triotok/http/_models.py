"""Typed request and response models (msgspec Structs): validation, messages and schemas.

A route declares its body, query and response as msgspec types
(``Route(body=TenantCreate, query=TenantPage, response=Tenant)``); from that
one declaration come

* validation: the body, once decoded by the strict JSON rules of ``_json``
  (depth, non-finite numbers, lone surrogates, U+0000), is converted into the
  Struct by :func:`convert` (``msgspec.convert``: no coercion, ``true`` is not
  an integer, unknown members refused where the Struct forbids them);
* messages: when that fails, :func:`validation_errors` names *every* failing
  member (``{"path": "/name", "message": ...}``, JSON Pointer), not only the
  first one msgspec stops at;
* schemas: ``/openapi.json`` publishes ``msgspec.json.schema_components`` of
  the same types as named components referenced by ``$ref``.

Examples: a Struct carries its example as the class variable ``EXAMPLE``
(a JSON value that must convert into the Struct; a test checks it).

Patterns: msgspec applies ``Meta(pattern=...)`` with Python's ``re.search``,
JSON Schema with ECMA-262 search; anchor them with
:func:`triotok._text.whole_match` so both read them the same.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, Union

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

from .._exceptions import RequestError

__all__ = (
    "FieldError",
    "Problem",
    "QuerySpec",
    "convert",
    "example_of",
    "query_spec",
    "validation_errors",
)

T = TypeVar("T")


class FieldError(Struct, frozen=True):
    """One reason a request was refused: where (JSON Pointer, or a parameter's name) and why."""

    path: str
    message: str
    in_: str | UnsetType = field(default=UNSET, name="in")


class Problem(Struct, frozen=True):
    """An error (RFC 9457 ``application/problem+json``) with a stable ``code``."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | UnsetType = UNSET
    request_id: str | UnsetType = UNSET
    #: 422 ``validation_failed`` and 400 ``invalid_query``: every failing field.
    errors: list[FieldError] | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "type": "urn:triotok:problem:validation_failed",
        "title": "Unprocessable Content",
        "status": 422,
        "code": "validation_failed",
        "detail": "the body does not match the schema",
        "instance": "/api/tenants",
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "errors": [{"path": "/name", "message": "Expected `str`, got `int`"}],
    }


def example_of(tp: Any) -> Any:
    """The example a model declares (its ``EXAMPLE``), or ``None``."""
    return getattr(tp, "EXAMPLE", None)


# ---------------------------------------------------------------- validation


def convert(tp: type[T], value: Any, *, status: int = 422, code: str = "validation_failed") -> T:
    """``value`` (decoded JSON) as a ``tp``, or a :class:`RequestError` naming each bad field."""
    try:
        return msgspec.convert(value, tp)
    except msgspec.ValidationError:
        detail = (
            "the body does not match the schema"
            if code == "validation_failed"
            else "invalid query parameters"
        )
        raise RequestError(
            detail, status=status, code=code, errors=validation_errors(tp, value)
        ) from None


def validation_errors(tp: Any, value: Any) -> list[dict[str, str]]:
    """Every way ``value`` fails to convert into the Struct ``tp`` (``[]``: it converts).

    msgspec stops at the first error; this checks member by member, so a
    client learns about all of them at once. The success path never runs it.
    """
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        whole = exc
    else:
        return []
    if not isinstance(value, dict) or not _is_struct(tp):
        return [_error(whole, "")]
    config = tp.__struct_config__
    fields = msgspec.structs.fields(tp)
    errors: list[dict[str, str]] = []
    for info in fields:
        name = info.encode_name
        if name not in value:
            if info.required:
                errors.append({"path": f"/{name}", "message": "is required"})
            continue
        try:
            msgspec.convert(value[name], info.type)
        except msgspec.ValidationError as exc:
            errors.append(_error(exc, f"/{name}"))
    if config.forbid_unknown_fields:
        known = {info.encode_name for info in fields}
        errors += [{"path": f"/{k}", "message": "is not allowed"} for k in value if k not in known]
    # Members fine one by one, yet not together (a Struct's __post_init__): the whole.
    return errors or [_error(whole, "")]


_AT = re.compile(r" - at `\$(.*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _error(exc: msgspec.ValidationError, prefix: str) -> dict[str, str]:
    message = str(exc)
    match = _AT.search(message)
    path = prefix
    if match is not None:
        message = message[: match.start()]
        steps = _STEP.findall(match.group(1))
        path += "".join(f"/{key or index}" for key, index in steps)
    return {"path": path or "/", "message": message}


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Struct)


# ---------------------------------------------------------------- query strings


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """One declared query parameter, as ``_query`` parses it and OpenAPI publishes it."""

    name: str
    required: bool
    integer: bool
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """The parameters of a query Struct, by name."""

    model: type[Struct]
    parameters: dict[str, QueryParameter]


@functools.cache
def query_spec(model: type[Struct]) -> QuerySpec:
    """The parameters of ``model``: each field one single-valued parameter.

    A field's type without ``None`` is the parameter's schema (absent is how a
    query says "none"); a field without a default is required.
    """
    parameters: dict[str, QueryParameter] = {}
    for info in msgspec.structs.fields(model):
        inner = _without_none(info.type)
        schema = msgspec.json.schema(inner)
        schema.pop("title", None)
        if info.default is not msgspec.NODEFAULT and info.default is not None:
            schema["default"] = info.default
        parameters[info.encode_name] = QueryParameter(
            info.encode_name, info.required, _base(inner) is int, schema
        )
    return QuerySpec(model, parameters)


def _without_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007  # built at runtime
    return tp


def _base(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp
