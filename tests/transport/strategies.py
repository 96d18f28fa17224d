"""Reusable hypothesis strategies for envelopes, and the test event types they use.

The test types live in their own :data:`REGISTRY`, never in the default one,
so the project's contract snapshot does not depend on which tests ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from hypothesis import strategies as st

from triotok.transport import Envelope, SchemaRegistry

REGISTRY = SchemaRegistry()


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: Literal["EUR", "USD"]


@dataclass(frozen=True)
class Node:
    label: str
    children: tuple[Node, ...]


@REGISTRY.event("test.pinged", version=1)
@dataclass(frozen=True)
class Pinged:
    n: int
    name: str


@REGISTRY.event("test.everything", version=1)
@dataclass(frozen=True)
class Everything:
    text: str
    number: int
    ratio: float
    flag: bool
    nothing: None
    blob: bytes
    ident: UUID
    when: datetime
    price: Money
    maybe: int | None
    either: int | str
    tags: list[str]
    pair: tuple[int, str]
    seq: tuple[UUID, ...]
    attrs: dict[str, float]
    tree: Node
    status: Literal["new", "paid"]


def _zones() -> st.SearchStrategy[timezone]:
    return st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    )


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes in a few fixed offsets, far enough from year 1 and 9999 to convert."""
    return st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=_zones()
    )


def traceparents() -> st.SearchStrategy[str]:
    """Valid W3C traceparent headers (version 00)."""
    return st.builds(
        lambda trace, parent, flags: f"00-{trace:032x}-{parent:016x}-{flags:02x}",
        st.integers(1, 2**128 - 1),
        st.integers(1, 2**64 - 1),
        st.integers(0, 255),
    )


def _floats() -> st.SearchStrategy[float]:
    return st.floats(allow_nan=False)  # NaN != NaN would defeat equality checks


def nodes() -> st.SearchStrategy[Node]:
    """Small recursive trees."""
    leaves = st.builds(Node, st.text(max_size=5), st.just(()))
    return st.recursive(
        leaves,
        lambda kids: st.builds(Node, st.text(max_size=5), st.lists(kids, max_size=3).map(tuple)),
        max_leaves=8,
    )


def everything() -> st.SearchStrategy[Everything]:
    """Payloads exercising every supported field type."""
    return st.builds(
        Everything,
        text=st.text(),
        number=st.integers(),
        ratio=_floats(),
        flag=st.booleans(),
        nothing=st.none(),
        blob=st.binary(),
        ident=st.uuids(),
        when=aware_datetimes(),
        price=st.builds(
            Money,
            st.decimals(allow_nan=False, allow_infinity=False),
            st.sampled_from(["EUR", "USD"]),
        ),
        maybe=st.none() | st.integers(),
        either=st.integers() | st.text(),
        tags=st.lists(st.text(max_size=8), max_size=5),
        pair=st.tuples(st.integers(), st.text(max_size=8)),
        seq=st.lists(st.uuids(), max_size=3).map(tuple),
        attrs=st.dictionaries(st.text(max_size=8), _floats(), max_size=4),
        tree=nodes(),
        status=st.sampled_from(["new", "paid"]),
    )


def payloads() -> st.SearchStrategy[Any]:
    """Any payload registered in :data:`REGISTRY`."""
    return st.builds(Pinged, st.integers(), st.text()) | everything()


def envelopes(payload: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Envelope]:
    """Envelopes around ``payload`` (default: any test payload) with random metadata."""
    optional_text = st.none() | st.text(max_size=20)
    return st.builds(
        lambda p, **kw: Envelope(
            payload=p, schema_version=1, event_type=REGISTRY.schema_of(p).event_type, **kw
        ),
        payloads() if payload is None else payload,
        id=st.uuids(),
        correlation_id=st.uuids(),
        causation_id=st.none() | st.uuids(),
        tenant_id=optional_text,
        trace_id=st.none() | traceparents(),
        timestamp=aware_datetimes(),
        actor_id=optional_text,
        retry_count=st.integers(0, 2**40),
    )
