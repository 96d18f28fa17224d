"""The schema registry: registration rules, upcaster chains, contracts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import cbor2
import pytest

from triotok.transport import Envelope, EventSchema, SchemaError, SchemaRegistry, decode, encode

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def envelope_of(payload: Any, registry: SchemaRegistry) -> Envelope:
    return Envelope.new(payload, registry=registry, timestamp=T0, tenant_id="acme")


# --------------------------------------------------------------------------- upcasters


@dataclass(frozen=True)
class RenamedV1:
    title: str


@dataclass(frozen=True)
class RenamedV2:
    name: str


@dataclass(frozen=True)
class RenamedV3:
    name: str
    sku: str


def chain_registry(calls: list[str], *, with_v2_step: bool = True) -> SchemaRegistry:
    """product.renamed v1 -> v2 (title becomes name) -> v3 (adds sku)."""
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    registry.event("product.renamed", version=2)(RenamedV2)
    registry.event("product.renamed", version=3)(RenamedV3)

    @registry.upcaster("product.renamed", from_version=1)
    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        calls.append("1->2")
        return {"name": raw.pop("title")}

    if with_v2_step:

        @registry.upcaster("product.renamed", from_version=2)
        def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
            calls.append("2->3")
            return {**raw, "sku": "unknown"}

    return registry


def test_chain_lifts_v1_to_current_in_order() -> None:
    calls: list[str] = []
    registry = chain_registry(calls)
    old = envelope_of(RenamedV1("Apple"), registry)
    assert old.schema_version == 1
    new = decode(encode(old, registry=registry), registry=registry)
    assert calls == ["1->2", "2->3"]
    assert new.payload == RenamedV3(name="Apple", sku="unknown")
    assert new.schema_version == 3
    # All other metadata is untouched.
    assert (new.id, new.correlation_id, new.tenant_id, new.timestamp, new.event_type) == (
        old.id,
        old.correlation_id,
        old.tenant_id,
        old.timestamp,
        old.event_type,
    )


def test_chain_from_the_middle() -> None:
    calls: list[str] = []
    registry = chain_registry(calls)
    new = decode(encode(envelope_of(RenamedV2("Pear"), registry), registry=registry),
                 registry=registry)  # fmt: skip
    assert calls == ["2->3"]
    assert new.payload == RenamedV3("Pear", "unknown")


def test_current_version_runs_no_upcaster() -> None:
    calls: list[str] = []
    registry = chain_registry(calls)
    current = envelope_of(RenamedV3("Fig", "f-1"), registry)
    assert decode(encode(current, registry=registry), registry=registry) == current
    assert calls == []


def test_gap_in_chain() -> None:
    registry = chain_registry([], with_v2_step=False)
    data = encode(envelope_of(RenamedV1("Apple"), registry), registry=registry)
    with pytest.raises(SchemaError, match=r"no upcaster from v2 to v3 \(cannot lift v1 to v3\)"):
        decode(data, registry=registry)


def test_gap_is_detected_before_any_upcaster_runs() -> None:
    calls: list[str] = []
    registry = chain_registry(calls, with_v2_step=False)
    with pytest.raises(SchemaError):
        decode(encode(envelope_of(RenamedV1("A"), registry), registry=registry), registry=registry)
    assert calls == []


def test_upcaster_without_old_class() -> None:
    # Old versions need no class: bytes from an older build are lifted as maps.
    registry = SchemaRegistry()
    registry.event("product.renamed", version=2)(RenamedV2)
    registry.upcaster("product.renamed", from_version=1)(lambda raw: {"name": raw["title"]})
    data = encode(envelope_of(RenamedV2("x"), registry), registry=registry)
    raw = cbor2.loads(data)
    raw["schema"], raw["payload"] = 1, {"title": "Plum"}
    new = decode(cbor2.dumps(raw, canonical=True), registry=registry)
    assert (new.schema_version, new.payload) == (2, RenamedV2("Plum"))


def test_failing_upcaster() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    registry.event("product.renamed", version=2)(RenamedV2)
    registry.upcaster("product.renamed", from_version=1)(lambda raw: {"name": raw["nope"]})
    data = encode(envelope_of(RenamedV1("A"), registry), registry=registry)
    with pytest.raises(SchemaError, match="upcaster v1 -> v2 failed: KeyError") as info:
        decode(data, registry=registry)
    assert isinstance(info.value.__cause__, KeyError)


def test_upcaster_returning_no_dict() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    registry.event("product.renamed", version=2)(RenamedV2)
    registry.upcaster("product.renamed", from_version=1)(lambda raw: None)
    data = encode(envelope_of(RenamedV1("A"), registry), registry=registry)
    with pytest.raises(SchemaError, match="returned no dict"):
        decode(data, registry=registry)


def test_upcasted_payload_must_match_the_current_class() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    registry.event("product.renamed", version=2)(RenamedV2)
    registry.upcaster("product.renamed", from_version=1)(lambda raw: raw)  # forgot the rename
    data = encode(envelope_of(RenamedV1("A"), registry), registry=registry)
    with pytest.raises(SchemaError, match=r"product.renamed v2: .*missing \['name'\]"):
        decode(data, registry=registry)


# --------------------------------------------------------------------------- registration


def test_schema_of_and_versions() -> None:
    registry = chain_registry([])
    assert registry.schema_of(RenamedV2("x")) == EventSchema("product.renamed", 2, RenamedV2)
    assert registry.schema_of(RenamedV3) == EventSchema("product.renamed", 3, RenamedV3)
    assert registry.current_version("product.renamed") == 3
    assert registry.event_types() == ["product.renamed"]
    with pytest.raises(SchemaError, match="unknown event type"):
        registry.current_version("nope")


def test_same_version_different_class_raises() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    with pytest.raises(SchemaError, match="v1 is already registered to RenamedV1"):
        registry.event("product.renamed", version=1)(RenamedV2)


def test_same_registration_twice_is_a_no_op() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    assert registry.event("product.renamed", version=1)(RenamedV1) is RenamedV1


def test_class_under_two_registrations_raises() -> None:
    registry = SchemaRegistry()
    registry.event("product.renamed", version=1)(RenamedV1)
    with pytest.raises(SchemaError, match=r"already registered as product\.renamed v1"):
        registry.event("product.other", version=1)(RenamedV1)


def test_only_frozen_dataclasses() -> None:
    registry = SchemaRegistry()
    with pytest.raises(SchemaError, match="needs a dataclass"):
        registry.event("test.plain")(type("Plain", (), {}))

    @dataclass
    class Mutable:
        n: int

    with pytest.raises(SchemaError, match="must be frozen"):
        registry.event("test.mutable")(Mutable)


@pytest.mark.parametrize("name", ["", "Product.Created", "product..created", "product.", 5])
def test_event_type_names(name: Any) -> None:
    with pytest.raises(SchemaError, match="dotted lowercase"):
        SchemaRegistry().event(name)


@pytest.mark.parametrize("version", [0, -1, True, "2"])
def test_versions_are_positive_ints(version: Any) -> None:
    with pytest.raises(SchemaError, match="version must be an int >= 1"):
        SchemaRegistry().event("test.x", version=version)
    with pytest.raises(SchemaError, match="from_version must be an int >= 1"):
        SchemaRegistry().upcaster("test.x", from_version=version)


def test_duplicate_upcaster_raises() -> None:
    registry = SchemaRegistry()
    registry.upcaster("test.x", from_version=1)(lambda raw: raw)
    with pytest.raises(SchemaError, match="an upcaster from v1 already exists"):
        registry.upcaster("test.x", from_version=1)(lambda raw: raw)


@dataclass(frozen=True)
class Unsupported:
    anything: object


@dataclass(frozen=True)
class IntKeys:
    table: dict[int, str]


@dataclass(frozen=True)
class Dangling:
    other: DoesNotExist  # type: ignore[name-defined]  # noqa: F821 - deliberately unresolvable


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (Unsupported, "Unsupported.anything: unsupported field type <class 'object'>"),
        (IntKeys, "IntKeys.table: dict keys must be str"),
        (Dangling, "cannot resolve the type hints of Dangling"),
    ],
)
def test_unsupported_field_types(cls: type, match: str) -> None:
    registry = SchemaRegistry()
    registry.event("test.bad")(cls)
    with pytest.raises(SchemaError, match=match):
        registry.contract()
    with pytest.raises(SchemaError, match=match):
        encode(Envelope.new(cls(None), registry=registry), registry=registry)


def test_module_level_decorators_use_the_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from triotok.transport import _registry, event, upcaster

    # A stand-in default registry, so this test leaves the real one (and the
    # contract snapshot) untouched.
    stand_in = SchemaRegistry()
    monkeypatch.setattr(_registry, "default_registry", stand_in)
    event("product.renamed", version=2)(RenamedV2)
    upcaster("product.renamed", from_version=1)(lambda raw: {"name": raw["title"]})
    assert stand_in.schema_of(RenamedV2) == EventSchema("product.renamed", 2, RenamedV2)
    assert stand_in._chain("product.renamed", 1, 2)


# --------------------------------------------------------------------------- contract


def test_contract_renders_field_types() -> None:
    from tests.transport.strategies import REGISTRY

    contract = REGISTRY.contract()
    assert contract["test.pinged"] == {"version": 1, "fields": {"n": "int", "name": "str"}}
    fields = contract["test.everything"]["fields"]
    assert fields["maybe"] == "int | None"
    assert fields["pair"] == "tuple[int, str]"
    assert fields["seq"] == "tuple[UUID, ...]"
    assert fields["attrs"] == "dict[str, float]"
    assert fields["price"] == "Money{amount: Decimal, currency: Literal['EUR', 'USD']}"
    assert fields["tree"] == "Node{label: str, children: tuple[Node, ...]}"
    assert fields["status"] == "Literal['new', 'paid']"


def test_contract_shows_only_the_current_version() -> None:
    assert chain_registry([]).contract() == {
        "product.renamed": {"version": 3, "fields": {"name": "str", "sku": "str"}}
    }


def test_contract_changes_with_shape() -> None:
    first, second = SchemaRegistry(), SchemaRegistry()

    @first.event("test.shape")
    @dataclass(frozen=True)
    class Before:
        id: UUID

    @second.event("test.shape")
    @dataclass(frozen=True)
    class After:
        id: str

    assert first.contract() != second.contract()


def test_contract_limited_to_a_package() -> None:
    registry = chain_registry([])
    assert registry.contract(package="tests") == registry.contract()
    assert registry.contract(package="tests.transport.test_registry") == registry.contract()
    assert registry.contract(package="triotok") == {}
    assert registry.contract(package="tests.transport.test_reg") == {}
