"""Consumer-side views: reading another module's event without importing its payload class.

A view declares the fields its consumer reads; it reads envelopes of newer
shapes that keep those fields (extra fields are ignored, nested ones too),
refuses an older version than it was written for, and refuses a payload that
lacks a field or holds it with another type. ``check_views`` holds views
against the producers' current shapes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from triotok.transport import Envelope, SchemaError, SchemaRegistry, decode, encode

REGISTRY = SchemaRegistry()


@dataclass(frozen=True, slots=True)
class Line:
    product_id: uuid.UUID
    quantity: int
    on_hand: int


@REGISTRY.event("stock.reserved", version=2)
@dataclass(frozen=True, slots=True)
class Reserved:
    order_id: str
    lines: tuple[Line, ...]
    note: str | None


@REGISTRY.upcaster("stock.reserved", from_version=1)
def _v1(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "note": None}


@dataclass(frozen=True, slots=True)
class LineView:
    product_id: uuid.UUID
    quantity: int


@REGISTRY.view("stock.reserved", version=2)
@dataclass(frozen=True, slots=True)
class ReservedView:
    order_id: str
    lines: tuple[LineView, ...]


@REGISTRY.view("stock.reserved", version=3)
@dataclass(frozen=True, slots=True)
class FromTheFuture:
    order_id: str


def _reserved() -> Envelope:
    line = Line(uuid.UUID(int=7), 2, 9)
    return Envelope.new(Reserved("o-1", (line,), "gift"), tenant_id="acme", registry=REGISTRY)


def test_a_view_reads_the_fields_it_declares_and_ignores_the_rest() -> None:
    envelope = _reserved()
    view = REGISTRY.view_of(envelope, ReservedView)
    assert view == ReservedView("o-1", (LineView(uuid.UUID(int=7), 2),))
    # The same after the wire (what a consumer in another process sees).
    again = decode(encode(envelope, registry=REGISTRY), registry=REGISTRY)
    assert REGISTRY.view_of(again, ReservedView) == view


def test_a_view_refuses_an_older_version_another_type_and_a_non_view() -> None:
    envelope = _reserved()
    with pytest.raises(SchemaError, match=r"reads stock\.reserved from v3, got v2"):
        REGISTRY.view_of(envelope, FromTheFuture)
    with pytest.raises(SchemaError, match="is not a registered event view"):
        REGISTRY.view_of(envelope, Reserved)
    other = SchemaRegistry()

    @other.event("stock.released")
    @dataclass(frozen=True)
    class Released:
        order_id: str

    @other.view("stock.reserved")
    @dataclass(frozen=True)
    class Wrong:
        order_id: str

    released = Envelope.new(Released("o-1"), registry=other)
    with pytest.raises(SchemaError, match=r"views stock\.reserved, not stock\.released"):
        other.view_of(released, Wrong)


def test_a_payload_missing_a_viewed_field_is_a_schema_error() -> None:
    registry = SchemaRegistry()

    @registry.event("thing.done")
    @dataclass(frozen=True)
    class Done:
        name: str

    @registry.view("thing.done")
    @dataclass(frozen=True)
    class DoneView:
        name: str
        count: int

    @registry.view("thing.done")
    @dataclass(frozen=True)
    class TypedWrong:
        name: int

    envelope = Envelope.new(Done("x"), registry=registry)
    with pytest.raises(SchemaError, match=r"missing \['count'\]"):
        registry.view_of(envelope, DoneView)
    with pytest.raises(SchemaError, match="name: expected int, got str"):
        registry.view_of(envelope, TypedWrong)
    problems = registry.check_views()
    assert len(problems) == 2
    assert "DoneView" in problems[0]
    assert "field 'count' is missing" in problems[0]
    assert "TypedWrong" in problems[1]
    assert "int is not str" in problems[1]


def test_check_views_accepts_fitting_views_and_names_misfits() -> None:
    # ReservedView fits (fewer fields, nested too); only the future one does not.
    assert REGISTRY.check_views() == [
        "FromTheFuture (view of stock.reserved v3): the producer is at v2 only",
    ]
    registry = SchemaRegistry()

    @registry.view("nobody.sends")
    @dataclass(frozen=True)
    class Orphan:
        x: int

    [problem] = registry.check_views()
    assert problem.endswith(
        "Orphan (view of nobody.sends v1): no payload of nobody.sends is registered"
    )


def test_a_class_is_a_view_or_a_payload_never_both() -> None:
    registry = SchemaRegistry()

    @registry.view("a.b")
    @dataclass(frozen=True)
    class Seen:
        x: int

    with pytest.raises(SchemaError, match="is a view, not a payload"):
        registry.event("a.b")(Seen)

    @registry.event("a.c")
    @dataclass(frozen=True)
    class Sent:
        x: int

    with pytest.raises(SchemaError, match="is a payload, not a view"):
        registry.view("a.c")(Sent)

    @dataclass
    class Mutable:
        x: int

    with pytest.raises(SchemaError, match="must be frozen"):
        registry.view("a.d")(Mutable)
