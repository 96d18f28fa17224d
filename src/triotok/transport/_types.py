"""Field types of event payloads: validation, wire conversion and contract names.

A payload class is compiled once into a tree of :class:`TypeCodec` objects, one
per type hint. ``to_wire`` turns a Python value into what cbor2 encodes
canonically; ``from_wire`` checks a value cbor2 decoded and rebuilds the Python
value. Both raise :class:`Invalid` with a path (``items[2].price``); the
registry turns that into a SchemaError naming the event and the field.

Supported: ``str int float bool None bytes UUID datetime Decimal``,
``list[T]``, ``tuple[T, ...]``, ``tuple[A, B]``, ``dict[str, T]``,
``Literal[...]`` of str/int/bool, unions (``X | None``), and nested
dataclasses (recursion allowed). Anything else is refused with SchemaError
when the class is first compiled.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .._exceptions import SchemaError

__all__ = ("Invalid", "TypeCodec", "compile_type")

Convert = Callable[[Any], Any]


class Invalid(Exception):
    """A value does not match its type; ``path`` locates it inside the payload.

    Internal: never escapes the transport layer (the registry converts it).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def at(self, part: str) -> Invalid:
        self.path.insert(0, part)
        return self

    def where(self) -> str:
        return "".join(self.path).lstrip(".") or "<payload>"


@dataclass(slots=True)
class TypeCodec:
    """Converters and contract name for one type hint.

    Mutable only while compiling: a recursive dataclass gets its codec object
    first and its converters once its fields are compiled.
    """

    name: str
    to_wire: Convert = field(repr=False)
    from_wire: Convert = field(repr=False)
    fields: dict[str, TypeCodec] = field(default_factory=dict, repr=False)  # dataclasses only


def _got(value: object) -> str:
    # Type names only: values may be huge (a 1 MiB bignum cannot even be str()'d).
    return type(value).__name__


def _exact(kind: type, name: str) -> TypeCodec:
    def check(value: Any) -> Any:
        # bool is an int subclass; CBOR keeps true/false apart from integers.
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise Invalid(f"expected {name}, got {_got(value)}")

    return TypeCodec(name, check, check)


def _none() -> TypeCodec:
    def check(value: Any) -> Any:
        if value is None:
            return None
        raise Invalid(f"expected None, got {_got(value)}")

    return TypeCodec("None", check, check)


def _float() -> TypeCodec:
    def check(value: Any) -> Any:
        # An int in a float field is widened so that equal payloads (1 == 1.0)
        # always produce equal bytes.
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise Invalid(f"expected float, got {_got(value)}")

    return TypeCodec("float", check, check)


def _datetime() -> TypeCodec:
    def check(value: Any) -> Any:
        if not isinstance(value, datetime):
            raise Invalid(f"expected datetime, got {_got(value)}")
        if value.utcoffset() is None:
            raise Invalid("expected an aware datetime, got a naive one")
        if value.tzinfo is UTC:
            return value
        try:
            # Normalised to UTC: one instant, one encoding.
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+05:00 has no UTC equivalent
            raise Invalid("datetime is out of range once converted to UTC") from None

    return TypeCodec("datetime", check, check)


def _decimal() -> TypeCodec:
    def check(value: Any) -> Any:
        if not isinstance(value, Decimal):
            raise Invalid(f"expected Decimal, got {_got(value)}")
        if not value.is_finite():
            raise Invalid("expected a finite Decimal")
        return value

    return TypeCodec("Decimal", check, check)


def _list(item: TypeCodec) -> TypeCodec:
    def to_wire(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected list, got {_got(value)}")
        return _items(item.to_wire, value)

    def from_wire(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected list, got {_got(value)}")
        return _items(item.from_wire, value)

    return TypeCodec(f"list[{item.name}]", to_wire, from_wire)


def _items(convert: Convert, values: list[Any] | tuple[Any, ...]) -> list[Any]:
    out = []
    for index, value in enumerate(values):
        try:
            out.append(convert(value))
        except Invalid as exc:
            raise exc.at(f"[{index}]") from None
    return out


def _tuple_of(item: TypeCodec) -> TypeCodec:
    def to_wire(value: Any) -> Any:
        if not isinstance(value, tuple):
            raise Invalid(f"expected tuple, got {_got(value)}")
        return _items(item.to_wire, value)

    def from_wire(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected array, got {_got(value)}")
        return tuple(_items(item.from_wire, value))

    return TypeCodec(f"tuple[{item.name}, ...]", to_wire, from_wire)


def _tuple_fixed(items: list[TypeCodec]) -> TypeCodec:
    def convert(value: Any, wire: bool) -> list[Any]:
        if len(value) != len(items):
            raise Invalid(f"expected {len(items)} items, got {len(value)}")
        out = []
        for index, (codec, item) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(codec.to_wire(item) if wire else codec.from_wire(item))
            except Invalid as exc:
                raise exc.at(f"[{index}]") from None
        return out

    def to_wire(value: Any) -> Any:
        if not isinstance(value, tuple):
            raise Invalid(f"expected tuple, got {_got(value)}")
        return convert(value, True)

    def from_wire(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected array, got {_got(value)}")
        return tuple(convert(value, False))

    names = ", ".join(c.name for c in items) if items else "()"
    return TypeCodec(f"tuple[{names}]", to_wire, from_wire)


def _dict(item: TypeCodec) -> TypeCodec:
    def convert(value: Any, fn: Convert) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"expected dict, got {_got(value)}")
        out = {}
        for key, item_value in value.items():
            if not isinstance(key, str):
                raise Invalid(f"expected str keys, got {_got(key)}")
            try:
                out[key] = fn(item_value)
            except Invalid as exc:
                raise exc.at(f"[{key[:40]!r}]") from None
        return out

    return TypeCodec(
        f"dict[str, {item.name}]",
        lambda value: convert(value, item.to_wire),
        lambda value: convert(value, item.from_wire),
    )


def _literal(values: tuple[Any, ...]) -> TypeCodec:
    for v in values:
        if not isinstance(v, str | int | bool):
            raise SchemaError(f"Literal values must be str, int or bool, got {v!r}")

    def check(value: Any) -> Any:
        # Compare type too: True == 1 but they are different wire values.
        for allowed in values:
            if type(value) is type(allowed) and value == allowed:
                return value
        raise Invalid(f"expected one of {', '.join(map(repr, values))}")

    return TypeCodec(f"Literal[{', '.join(map(repr, values))}]", check, check)


def _union(options: list[TypeCodec]) -> TypeCodec:
    # float widens ints, so it is tried last: ``float | int`` keeps 1 an int.
    ordered = sorted(options, key=lambda c: c.name == "float")

    def pick(value: Any, wire: bool) -> Any:
        failures = []
        for codec in ordered:
            try:
                return codec.to_wire(value) if wire else codec.from_wire(value)
            except Invalid as exc:
                if codec.name != "None":
                    failures.append(exc)
        if len(failures) == 1:
            # ``X | None`` holding something else: X's error has the precise path.
            raise failures[0]
        raise Invalid(f"matches none of {name}, got {_got(value)}")

    name = " | ".join(c.name for c in options)
    return TypeCodec(name, lambda v: pick(v, True), lambda v: pick(v, False))


def _dataclass(cls: type, memo: dict[type, TypeCodec], tolerant: bool) -> TypeCodec:
    if cls in memo:
        return memo[cls]
    codec = TypeCodec(cls.__name__, _unfinished, _unfinished)
    memo[cls] = codec  # before compiling fields, so recursive references resolve
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # NameError, TypeError, ...: any unresolvable annotation
        raise SchemaError(f"cannot resolve the type hints of {cls.__qualname__}: {exc}") from exc
    fields: list[tuple[str, TypeCodec]] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue  # computed in __post_init__, not part of the wire shape
        try:
            fields.append((f.name, compile_type(hints[f.name], memo, tolerant=tolerant)))
        except SchemaError as exc:
            raise SchemaError(f"{cls.__qualname__}.{f.name}: {exc}") from None
    names = frozenset(name for name, _ in fields)

    def to_wire(value: Any) -> Any:
        if type(value) is not cls:
            raise Invalid(f"expected {cls.__name__}, got {_got(value)}")
        out = {}
        for name, fcodec in fields:
            try:
                out[name] = fcodec.to_wire(getattr(value, name))
            except Invalid as exc:
                raise exc.at(f".{name}") from None
        return out

    def from_wire(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid(f"expected a map for {cls.__name__}, got {_got(value)}")
        if value.keys() != names and not (tolerant and names <= value.keys()):
            missing = sorted(names - value.keys())
            extra = sorted(str(k)[:40] for k in value.keys() - names)
            raise Invalid(f"{cls.__name__} fields differ: missing {missing}, unexpected {extra}")
        kwargs = {}
        for name, fcodec in fields:
            try:
                kwargs[name] = fcodec.from_wire(value[name])
            except Invalid as exc:
                raise exc.at(f".{name}") from None
        try:
            return cls(**kwargs)
        except Exception as exc:  # the class's own __post_init__ validation refused it
            raise Invalid(
                f"{cls.__name__} rejected the value: {type(exc).__name__}: {exc}"
            ) from exc

    inner = ", ".join(f"{name}: {fcodec.name}" for name, fcodec in fields)
    codec.name = f"{cls.__name__}{{{inner}}}"
    codec.to_wire, codec.from_wire = to_wire, from_wire
    codec.fields = dict(fields)
    return codec


def _unfinished(value: Any) -> Any:  # pragma: no cover - replaced before any use
    raise AssertionError("codec used before compilation finished")


_SIMPLE: dict[Any, Callable[[], TypeCodec]] = {
    str: lambda: _exact(str, "str"),
    int: lambda: _exact(int, "int"),
    bool: lambda: _exact(bool, "bool"),
    bytes: lambda: _exact(bytes, "bytes"),
    uuid.UUID: lambda: _exact(uuid.UUID, "UUID"),
    float: _float,
    datetime: _datetime,
    Decimal: _decimal,
    None: _none,
    type(None): _none,
}


def compile_type(
    hint: Any, memo: dict[type, TypeCodec] | None = None, *, tolerant: bool = False
) -> TypeCodec:
    """Compile a resolved type hint into a :class:`TypeCodec`; SchemaError if unsupported.

    ``tolerant`` codecs (a consumer's view of another module's event) read
    maps that hold more fields than their dataclasses declare and ignore the
    rest; missing fields are still refused. A memo holds one kind only.
    """
    memo = {} if memo is None else memo
    simple = _SIMPLE.get(hint)
    if simple is not None:
        return simple()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, memo, tolerant)

    def inner(arg: Any) -> TypeCodec:
        return compile_type(arg, memo, tolerant=tolerant)

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and len(args) == 1:
        return _list(inner(args[0]))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_of(inner(args[0]))
        return _tuple_fixed([inner(a) for a in args if a != ()])
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise SchemaError(f"dict keys must be str, got {args[0]!r}")
        return _dict(inner(args[1]))
    if origin is typing.Literal:
        return _literal(args)
    if origin is typing.Union or origin is types.UnionType:
        return _union([inner(a) for a in args])
    raise SchemaError(f"unsupported field type {hint!r}")
