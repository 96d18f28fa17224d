"""The schema registry: event types, their versions, payload classes and upcasters.

Invariants:

- one class per ``(event_type, version)`` and one ``(event_type, version)`` per
  class; re-registering the identical pair is a no-op, anything else raises;
- the *current* version of a type is the highest registered one; decoding
  always yields it, lifting older payloads through upcasters one version at a
  time (``v -> v+1``), and refuses gaps and future versions.

Registration happens at import time, from one thread; the registry takes no
locks.

*Views* are the consumer's side of an event another module owns. Modules
never import each other, so a consumer cannot name the producer's payload
class; it declares the fields it reads, in a frozen dataclass of its own,
with :func:`event_view` (``version``: the producer's version it was written
against), and reads each delivered envelope with :func:`view_of`. A view is
a tolerant reader: it may declare fewer fields than the event carries
(nested dataclasses too), never other types. Views are not payload
registrations: they never encode, and :meth:`SchemaRegistry.check_views`
holds every view against the producer's current shape (the contract test
runs it).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .._exceptions import SchemaError
from ._types import Invalid, TypeCodec, compile_type

__all__ = (
    "EventSchema",
    "SchemaRegistry",
    "Upcaster",
    "default_registry",
    "event",
    "event_view",
    "upcaster",
    "view_of",
)

T = TypeVar("T", bound=type)
V = TypeVar("V")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
U = TypeVar("U", bound=Upcaster)

# Dotted lowercase names ("product.created"): the bus matches patterns on the dots.
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


@dataclass(frozen=True, slots=True)
class EventSchema:
    """The registration of one payload class: its event type and version."""

    event_type: str
    version: int
    payload_type: type


class SchemaRegistry:
    """Event payload types by ``(event_type, version)``, and the upcasters between versions.

    The module-level :data:`default_registry` backs the :func:`event` and
    :func:`upcaster` decorators; tests build their own to stay isolated::

        registry = SchemaRegistry()

        @registry.event("test.pinged", version=2)
        @dataclass(frozen=True)
        class Pinged:
            n: int

        @registry.upcaster("test.pinged", from_version=1)
        def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
            return {"n": raw["count"]}

        decode(data, registry=registry)
    """

    def __init__(self) -> None:
        self._classes: dict[str, dict[int, type]] = {}
        self._schemas: dict[type, EventSchema] = {}
        self._upcasters: dict[str, dict[int, Upcaster]] = {}
        self._codecs: dict[type, TypeCodec] = {}  # compiled lazily: hints may be forward refs
        self._views: dict[type, EventSchema] = {}
        self._view_codecs: dict[type, TypeCodec] = {}

    # ------------------------------------------------------------------ registration

    def event(self, event_type: str, *, version: int = 1) -> Callable[[T], T]:
        """Class decorator registering a frozen dataclass as the payload of ``event_type``."""
        _check_name(event_type)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SchemaError(f"{event_type}: version must be an int >= 1, got {version!r}")

        def register(cls: T) -> T:
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise SchemaError(f"{event_type}: @event needs a dataclass, got {cls!r}")
            if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]  # set by @dataclass
                raise SchemaError(f"{event_type}: {cls.__qualname__} must be frozen")
            schema = EventSchema(event_type, version, cls)
            known = self._classes.get(event_type, {}).get(version)
            if known is not None and known is not cls:
                raise SchemaError(
                    f"{event_type} v{version} is already registered to {known.__qualname__}"
                )
            if cls in self._views:
                raise SchemaError(f"{cls.__qualname__} is a view, not a payload")
            previous = self._schemas.get(cls)
            if previous is not None and previous != schema:
                raise SchemaError(
                    f"{cls.__qualname__} is already registered as "
                    f"{previous.event_type} v{previous.version}"
                )
            self._classes.setdefault(event_type, {})[version] = cls
            self._schemas[cls] = schema
            return cls

        return register

    def upcaster(self, event_type: str, *, from_version: int) -> Callable[[U], U]:
        """Decorator registering ``fn(raw) -> raw`` that lifts a payload map one version.

        The function receives the decoded map of a ``from_version`` payload (a
        copy it may mutate) and returns the map of a ``from_version + 1`` one.
        """
        _check_name(event_type)
        if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 1:
            raise SchemaError(f"{event_type}: from_version must be an int >= 1")

        def register(fn: U) -> U:
            known = self._upcasters.get(event_type, {}).get(from_version)
            if known is not None and known is not fn:
                raise SchemaError(f"{event_type}: an upcaster from v{from_version} already exists")
            self._upcasters.setdefault(event_type, {})[from_version] = fn
            return fn

        return register

    def view(self, event_type: str, *, version: int = 1) -> Callable[[T], T]:
        """Class decorator declaring a frozen dataclass as a consumer's view of ``event_type``.

        ``version`` is the producer's version the view was written against: an
        envelope of an older version is refused by :meth:`view_of`. One class
        views one event type; several classes (of several consumers) may view
        the same type.
        """
        _check_name(event_type)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SchemaError(f"{event_type}: version must be an int >= 1, got {version!r}")

        def register(cls: T) -> T:
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise SchemaError(f"{event_type}: @event_view needs a dataclass, got {cls!r}")
            if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]  # set by @dataclass
                raise SchemaError(f"{event_type}: {cls.__qualname__} must be frozen")
            if cls in self._schemas:
                raise SchemaError(f"{cls.__qualname__} is a payload, not a view")
            schema = EventSchema(event_type, version, cls)
            previous = self._views.get(cls)
            if previous is not None and previous != schema:
                raise SchemaError(
                    f"{cls.__qualname__} already views {previous.event_type} v{previous.version}"
                )
            self._views[cls] = schema
            return cls

        return register

    # ------------------------------------------------------------------ queries

    def schema_of(self, payload: object) -> EventSchema:
        """The registration of a payload instance (or class); SchemaError if unregistered."""
        cls = payload if isinstance(payload, type) else type(payload)
        schema = self._schemas.get(cls)
        if schema is None:
            raise SchemaError(f"{cls.__qualname__} is not a registered event payload")
        return schema

    def current_version(self, event_type: str) -> int:
        """The highest registered version of ``event_type``; SchemaError if unknown."""
        versions = self._classes.get(event_type)
        if not versions:
            raise SchemaError(f"unknown event type {event_type[:100]!r}")
        return max(versions)

    def event_types(self) -> list[str]:
        """All registered event types, sorted."""
        return sorted(self._classes)

    def contract(self, *, package: str | None = None) -> dict[str, dict[str, Any]]:
        """The shape of every current event type: ``{type: {"version": N, "fields": {...}}}``.

        Field types are rendered as strings (``"list[UUID]"``, ``"str | None"``,
        nested dataclasses inline). Compare it with a checked-in snapshot to
        catch a shape change made without a version bump. With ``package``,
        only types whose current payload class is defined in that package (or
        below it) are included, e.g. ``package="triotok"`` leaves out types
        registered by tests or plugins.
        """
        out: dict[str, dict[str, Any]] = {}
        for event_type in self.event_types():
            version = self.current_version(event_type)
            cls = self._classes[event_type][version]
            module = cls.__module__
            if package is not None and not (module == package or module.startswith(package + ".")):
                continue
            # Compiling here refuses unsupported field types in the contract
            # test rather than on the first decode in production.
            codec = self._codec(cls)
            fields = {name: field.name for name, field in codec.fields.items()}
            out[event_type] = {"version": version, "fields": fields}
        return out

    def views(self) -> list[EventSchema]:
        """Every registered view, by event type then class name."""
        return sorted(self._views.values(), key=lambda s: (s.event_type, s.payload_type.__name__))

    def check_views(self, *, package: str | None = None) -> list[str]:
        """Why views do not fit the current payloads they view (empty: all fit).

        Each field of a view must be a field of the producer's current
        payload class with the same type (a nested dataclass may again leave
        fields out). A view of a type no one registers here is reported too.
        With ``package``, only views defined in that package are checked.
        """
        problems = []
        for schema in self.views():
            cls = schema.payload_type
            module = cls.__module__
            if package is not None and not (module == package or module.startswith(package + ".")):
                continue
            versions = self._classes.get(schema.event_type)
            name = f"{cls.__qualname__} (view of {schema.event_type} v{schema.version})"
            if not versions:
                problems.append(f"{name}: no payload of {schema.event_type} is registered")
                continue
            current = max(versions)
            if current < schema.version:
                problems.append(f"{name}: the producer is at v{current} only")
                continue
            mismatch = _fits(cls, versions[current])
            if mismatch is not None:
                problems.append(f"{name}: {mismatch} in v{current}")
        return problems

    def view_of(self, envelope: Any, cls: type[V]) -> V:
        """The payload of ``envelope`` (an :class:`Envelope`) read through the view ``cls``.

        SchemaError when ``cls`` is not a view of the envelope's type, the
        envelope is older than the view's version, or the payload lacks a
        field the view reads (or holds it with another type): a permanent
        error for a bus handler, which dead-letters the event.
        """
        schema = self._views.get(cls)
        if schema is None:
            raise SchemaError(f"{cls.__qualname__} is not a registered event view")
        event_type, version = envelope.event_type, envelope.schema_version
        if event_type != schema.event_type:
            raise SchemaError(
                f"{cls.__qualname__} views {schema.event_type}, not {str(event_type)[:100]}"
            )
        if version < schema.version:
            raise SchemaError(
                f"{cls.__qualname__} reads {event_type} from v{schema.version}, got v{version}"
            )
        wire = self.payload_to_wire(event_type, version, envelope.payload)
        codec = self._view_codecs.get(cls)
        if codec is None:
            codec = compile_type(cls, {}, tolerant=True)
            self._view_codecs[cls] = codec
        try:
            view: V = codec.from_wire(wire)
        except Invalid as exc:
            raise SchemaError(
                f"{event_type} v{version} as {cls.__qualname__}: {exc.where()}: {exc.message}"
            ) from None
        return view

    # ------------------------------------------------------------------ wire conversion

    def payload_to_wire(self, event_type: str, version: int, payload: object) -> dict[str, Any]:
        """Validate ``payload`` against its registration and return its CBOR-ready map."""
        schema = self.schema_of(payload)
        if (schema.event_type, schema.version) != (event_type, version):
            raise SchemaError(
                f"envelope says {event_type} v{version} but its payload "
                f"{schema.payload_type.__qualname__} is {schema.event_type} v{schema.version}"
            )
        try:
            wire: dict[str, Any] = self._codec(schema.payload_type).to_wire(payload)
        except Invalid as exc:
            raise SchemaError(f"{event_type} v{version}: {exc.where()}: {exc.message}") from None
        return wire

    def payload_from_wire(self, event_type: str, version: int, raw: object) -> tuple[int, object]:
        """Upcast ``raw`` from ``version`` to the current one and build the payload.

        Returns ``(current_version, payload)``. SchemaError for an unknown type,
        a future version, a gap in the upcaster chain, a failing upcaster or a
        payload that does not match the current class.
        """
        current = self.current_version(event_type)
        if version > current:
            raise SchemaError(
                f"{event_type} v{version} is newer than the newest known version v{current}"
            )
        chain = self._chain(event_type, version, current)
        if not isinstance(raw, dict):
            raise SchemaError(f"{event_type} v{version}: payload must be a map")
        data: dict[str, Any] = raw
        for step, fn in enumerate(chain, start=version):
            try:
                lifted = fn(dict(data))
            except Exception as exc:  # user code: any failure means "cannot upcast"
                raise SchemaError(
                    f"{event_type}: upcaster v{step} -> v{step + 1} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(lifted, dict):
                raise SchemaError(f"{event_type}: upcaster v{step} -> v{step + 1} returned no dict")
            data = lifted
        cls = self._classes[event_type][current]
        try:
            payload = self._codec(cls).from_wire(data)
        except Invalid as exc:
            raise SchemaError(f"{event_type} v{current}: {exc.where()}: {exc.message}") from None
        return current, payload

    def _chain(self, event_type: str, version: int, current: int) -> list[Upcaster]:
        steps = self._upcasters.get(event_type, {})
        chain = []
        for v in range(version, current):
            fn = steps.get(v)
            if fn is None:
                raise SchemaError(
                    f"{event_type}: no upcaster from v{v} to v{v + 1} "
                    f"(cannot lift v{version} to v{current})"
                )
            chain.append(fn)
        return chain

    def _codec(self, cls: type) -> TypeCodec:
        codec = self._codecs.get(cls)
        if codec is None:
            memo: dict[type, TypeCodec] = {}
            codec = compile_type(cls, memo)
            self._codecs[cls] = codec
        return codec


def _fits(view: Any, produced: Any) -> str | None:
    """Why the type hint ``view`` cannot read values of ``produced`` (``None``: it can)."""
    if isinstance(view, type) and dataclasses.is_dataclass(view):
        if not (isinstance(produced, type) and dataclasses.is_dataclass(produced)):
            return f"{view.__name__} is a dataclass, the producer has {produced!r}"
        try:
            mine, theirs = typing.get_type_hints(view), typing.get_type_hints(produced)
        except Exception as exc:  # an unresolvable annotation
            return f"cannot resolve the type hints: {exc}"
        offered = {f.name for f in dataclasses.fields(produced) if f.init}
        for f in dataclasses.fields(view):
            if not f.init:
                continue
            if f.name not in offered:
                return f"field {f.name!r} is missing"
            mismatch = _fits(mine[f.name], theirs[f.name])
            if mismatch is not None:
                return f"{f.name}: {mismatch}"
        return None
    view_origin, produced_origin = _origin(view), _origin(produced)
    if view_origin is None or produced_origin is None:
        return None if view == produced else f"{_show(view)} is not {_show(produced)}"
    view_args, produced_args = typing.get_args(view), typing.get_args(produced)
    if view_origin != produced_origin or len(view_args) != len(produced_args):
        return f"{_show(view)} is not {_show(produced)}"
    if view_origin is typing.Literal:
        return None if view_args == produced_args else f"{_show(view)} is not {_show(produced)}"
    for mine, theirs in zip(view_args, produced_args, strict=True):
        mismatch = _fits(mine, theirs)
        if mismatch is not None:
            return mismatch
    return None


def _origin(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    return typing.Union if origin is types.UnionType else origin


def _show(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _check_name(event_type: object) -> None:
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise SchemaError(
            f"event type must be dotted lowercase words like 'product.created', got {event_type!r}"
        )


default_registry = SchemaRegistry()
"""The registry the module-level :func:`event` and :func:`upcaster` decorators fill."""


def event(event_type: str, *, version: int = 1) -> Callable[[T], T]:
    """Register a frozen dataclass as the payload of ``event_type`` in the default registry.

    ::

        @event("product.created", version=2)
        @dataclass(frozen=True)
        class ProductCreated:
            sku: str
            price: Decimal
    """
    return default_registry.event(event_type, version=version)


def upcaster(event_type: str, *, from_version: int) -> Callable[[U], U]:
    """Register, in the default registry, a function lifting a raw payload one version.

    ::

        @upcaster("product.created", from_version=1)
        def _price_as_decimal(raw: dict[str, Any]) -> dict[str, Any]:
            cents = raw.pop("price_cents")
            return {**raw, "price": Decimal(cents) / 100}
    """
    return default_registry.upcaster(event_type, from_version=from_version)


def event_view(event_type: str, *, version: int = 1) -> Callable[[T], T]:
    """Declare, in the default registry, a consumer's view of another module's event.

    ::

        @event_view("inventory.reserved", version=1)
        @dataclass(frozen=True, slots=True)
        class StockReserved:        # the fields this consumer reads, nothing more
            order_id: str

        reserved = view_of(envelope, StockReserved)
    """
    return default_registry.view(event_type, version=version)


def view_of(envelope: Any, cls: type[V]) -> V:
    """``envelope``'s payload read through the view ``cls`` (see :func:`event_view`)."""
    return default_registry.view_of(envelope, cls)
