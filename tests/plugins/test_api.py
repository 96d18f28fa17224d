"""The plugin API's declarations: versions and ranges, metadata, capabilities, endpoints, frames."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok._exceptions import InvalidConfig, SchemaError
from triotok.plugins import (
    API_VERSION,
    Capabilities,
    CapabilityDenied,
    Endpoint,
    InvalidInput,
    Limits,
    Metadata,
    NotFound,
    PluginCrashed,
    PluginTimeout,
    Version,
    VersionRange,
)
from triotok.plugins._frames import MAX_FRAME, FrameBuffer, pack, unpack
from triotok.plugins._wire import error_from_wire, error_to_wire

versions = st.builds(Version, st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))


# ------------------------------------------------------------------ versions


def test_versions_parse_and_order() -> None:
    assert Version.parse("1") == Version(1, 0, 0)
    assert Version.parse("1.2") < Version.parse("1.10.0")
    assert str(Version.parse(API_VERSION)) == API_VERSION
    for bad in ("", "1.2.3.4", "01.2", "v1", "1.-2", "x"):
        with pytest.raises(InvalidConfig):
            Version.parse(bad)
    with pytest.raises(InvalidConfig):
        Version.parse("1.2", full=True)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (">=1.0,<2", ["1.0.0", "1.99.9"], ["0.9.9", "2.0.0"]),
        ("^1.2", ["1.2.0", "1.9.0"], ["1.1.9", "2.0.0"]),
        ("^0.3", ["0.3.0", "0.3.9"], ["0.4.0", "1.0.0"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("==1.0.1", ["1.0.1"], ["1.0.0"]),
        ("!=1.0.1, >1", ["1.0.2"], ["1.0.1", "1.0.0"]),
        ("<=1.4", ["1.4.0"], ["1.4.1"]),
    ],
)
def test_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    found = VersionRange.parse(text)
    assert all(found.contains(v) for v in inside)
    assert not any(found.contains(v) for v in outside)


@given(versions, versions)
def test_a_caret_range_is_its_major_from_its_bound(bound: Version, version: Version) -> None:
    caret = VersionRange.parse(f"^{bound}")
    if bound.major:
        expected = version.major == bound.major and version >= bound
    else:
        expected = (version.major, version.minor) == (0, bound.minor) and version >= bound
    assert caret.contains(version) == expected


def test_bad_ranges_are_refused() -> None:
    for bad in ("", "1.0", ">=", "=>1", ">=1,,<2", "x" * 300):
        with pytest.raises(InvalidConfig):
            VersionRange.parse(bad)


# ------------------------------------------------------------------ declarations


def test_metadata_is_validated() -> None:
    assert Metadata("a-b", "1.0.0", api="^1.0").api_range.contains(API_VERSION)
    for bad in (
        dict(name="A", version="1.0.0", api="^1"),
        dict(name="x" * 65, version="1.0.0", api="^1"),
        dict(name="manager", version="1.0.0", api="^1"),
        dict(name="ok", version="1.0", api="^1"),
        dict(name="ok", version="1.0.0", api="one"),
    ):
        with pytest.raises(InvalidConfig):
            Metadata(**bad)


def test_capabilities_cover_patterns_hosts_and_grants() -> None:
    asked = Capabilities(
        subscribe=("content.*",), publish=("seo.*",), routes=True, hosts=("*.example.com",),
        storage="seo",
    )  # fmt: skip
    assert asked.may_subscribe("content.node.*")
    assert asked.may_subscribe("content.node.created")
    assert not asked.may_subscribe("*")
    assert asked.may_publish("seo.analyzed")
    assert not asked.may_publish("tenant.created")
    assert asked.may_call("hooks.example.com")
    assert not asked.may_call("example.org")
    assert Capabilities(subscribe=("content.node.*",), storage="seo").within(asked) == []
    assert Capabilities(subscribe=("*",), hosts=("*",), storage="x").within(asked) == [
        "subscribe '*'",
        "host '*'",
        "storage 'x'",
    ]
    assert Capabilities.from_dict(asked.as_dict()) == asked
    for bad in (
        dict(subscribe="content.*"),
        dict(subscribe=("Content",)),
        dict(publish=("a..b",)),
        dict(hosts=("http://x",)),
        dict(storage="Bad Name"),
        dict(routes="yes"),
    ):
        with pytest.raises(InvalidConfig):
            Capabilities(**bad)


async def _handler(request: object) -> None:
    return None


def test_endpoints_and_limits_are_validated() -> None:
    assert Endpoint("GET", "/items/<item_id>", _handler, "x").key == "GET /items/<item_id>"
    assert Endpoint("GET", "", _handler, "x").key == "GET "
    for bad in (
        dict(method="TRACE", path="/x"),
        dict(method="GET", path="x"),
        dict(method="GET", path="/x/"),
        dict(method="GET", path="/<Bad>"),
        dict(method="GET", path="/x", action="write"),
    ):
        with pytest.raises(InvalidConfig):
            Endpoint(handler=_handler, summary="x", **bad)
    with pytest.raises(InvalidConfig):
        Limits(open_files=4)
    with pytest.raises(InvalidConfig):
        Limits(deadline=0)


# ------------------------------------------------------------------ frames and errors


messages = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=10,
    ),
    max_size=5,
).map(lambda d: {**d, "k": "call"})


@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_frames_survive_any_split_of_the_pipe(
    sent: list[dict[str, object]], data: st.DataObject
) -> None:
    stream = b"".join(pack(m) for m in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    buffer, received = FrameBuffer(), []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received += buffer.feed(stream[start:end])
    assert received == sent
    assert buffer.pending == 0


def test_frames_refuse_what_is_not_a_strict_map() -> None:
    for body in (cbor2.dumps([1]), cbor2.dumps({"x": 1}), cbor2.dumps({"k": "call"}) + b"\x00"):
        with pytest.raises(SchemaError):
            unpack(body)
    tagged = cbor2.dumps({"k": "call", "v": cbor2.CBORTag(1, 0)})
    with pytest.raises(SchemaError):
        unpack(tagged)
    with pytest.raises(SchemaError):
        FrameBuffer().feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(SchemaError):
        pack({"k": "call", "v": object()})


def test_errors_cross_as_known_types_only() -> None:
    denied = CapabilityDenied("p", "publish", "x.y")
    back = error_from_wire("p", error_to_wire(denied))
    assert isinstance(back, CapabilityDenied)
    assert (back.capability, back.target) == ("publish", "x.y")
    invalid = error_from_wire("p", error_to_wire(InvalidInput("bad", field="f")))
    assert isinstance(invalid, InvalidInput)
    assert invalid.extra == {"field": "f"}
    assert isinstance(error_from_wire("p", error_to_wire(NotFound("gone"))), NotFound)
    assert isinstance(error_from_wire("p", error_to_wire(PluginTimeout("p", "t"))), PluginTimeout)
    # Anything else, e.g. an exception type the child made up, is a crash of the plugin.
    odd = error_from_wire("p", {"type": "SystemExit", "message": "bye"})
    assert isinstance(odd, PluginCrashed)
    assert "SystemExit: bye" in str(odd)
    assert isinstance(error_from_wire("p", "junk"), PluginCrashed)
