"""OTLP export through the span forwarder: same bytes, a real receiver, a dead child replaced."""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from tests.telemetry.otlp import otlp_receiver
from triotok.telemetry import TelemetryOptions
from triotok.telemetry._forward import ForwardingSpanExporter
from triotok.telemetry._forwarder import flatten, restore
from triotok.telemetry._tracing import Tracing

REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(1),
    trace_state=TraceState([("vendor", "value"), ("other", "x")]),
)


def _tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TelemetryOptions(tracing="otlp"), processor=SimpleSpanProcessor(exporter))
    return tracing, exporter


def _wire(spans: Any) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def _through_the_pipe(spans: Any) -> list[ReadableSpan]:
    return restore(pickle.loads(pickle.dumps(flatten(spans), protocol=pickle.HIGHEST_PROTOCOL)))


def test_restored_spans_encode_to_the_same_otlp_bytes() -> None:
    tracing, exporter = _tracing()
    parent = trace.set_span_in_context(trace.NonRecordingSpan(REMOTE))
    with tracing.scope(
        "GET /api/products",
        parent,
        SpanKind.SERVER,
        {"s": "text", "i": 7, "f": 0.5, "b": True, "seq": ("a", "b"), "ints": (1, 2)},
    ) as server:
        server.add_event("breaker.transition", {"from": "closed", "to": "open"})
        with tracing.scope("db SELECT", None, SpanKind.CLIENT):
            pass
        server.set_status(StatusCode.ERROR, "RuntimeError: boom")
    linked = tracing.tracer.start_span("linked", links=[Link(REMOTE, {"why": "batch"})])
    linked.end()
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    restored = _through_the_pipe(spans)
    assert _wire(restored) == _wire(spans)
    assert restored[1].parent is not None
    assert restored[1].parent.is_remote
    assert restored[1].parent.trace_state == REMOTE.trace_state


def test_dropped_counts_survive_the_pipe() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        span_limits=SpanLimits(max_span_attributes=2, max_events=1, max_links=1)
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span(
        "crowded", attributes={"a": 1, "b": 2, "c": 3}, links=[Link(REMOTE), Link(REMOTE)]
    )
    span.add_event("one")
    span.add_event("two")
    span.end()
    (finished,) = exporter.get_finished_spans()
    (restored,) = _through_the_pipe([finished])
    for span in (finished, restored):
        assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (1, 1, 1)
    assert _wire([restored]) == _wire([finished])


_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
    st.lists(st.integers(0, 100), max_size=3).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), _VALUES, max_size=8), st.text(max_size=30))
def test_any_attributes_and_name_survive_the_pipe(attributes: dict[str, Any], name: str) -> None:
    tracing, exporter = _tracing()
    with tracing.scope(name, None, SpanKind.INTERNAL, attributes):
        pass
    spans = exporter.get_finished_spans()
    assert _wire(_through_the_pipe(spans)) == _wire(spans)


def test_spans_reach_a_receiver_through_the_child_and_a_dead_child_is_replaced() -> None:
    tracing, memory = _tracing()
    for n in range(3):
        with tracing.scope(f"work {n}"):
            pass
    first, second, third = memory.get_finished_spans()
    with otlp_receiver() as receiver:
        forwarder = ForwardingSpanExporter(receiver.url, timeout=5.0)
        try:
            assert forwarder.pid is None  # started by the first batch
            assert forwarder.export([first]) is SpanExportResult.SUCCESS
            assert [s.name for s in receiver.snapshot()] == ["work 0"]  # sent when it answers
            pid = forwarder.pid
            assert pid is not None
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            assert forwarder.export([second, third]) is SpanExportResult.SUCCESS
            assert forwarder.started == 2
            assert forwarder.pid not in (None, pid)
            assert [s.name for s in receiver.snapshot()] == ["work 0", "work 1", "work 2"]
            received = receiver.snapshot()[0]
            assert received.resource["service.name"] == "triotok"
        finally:
            child = forwarder._child
            forwarder.shutdown()
        assert child is not None
        assert child.returncode == 0  # its input ended: it shut down and exited
        assert forwarder.export([first]) is SpanExportResult.FAILURE  # after shutdown


def test_a_receiver_that_is_down_answers_failure_not_a_hang() -> None:
    tracing, memory = _tracing()
    with tracing.scope("lost"):
        pass
    with otlp_receiver() as receiver:
        url = receiver.url
    forwarder = ForwardingSpanExporter(url, timeout=1.0)  # nobody listens there any more
    try:
        assert forwarder.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
        assert forwarder.started == 1  # the child answered: it stays
    finally:
        forwarder.shutdown()


def test_without_a_child_spans_are_exported_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing, memory = _tracing()
    with tracing.scope("here"):
        pass
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with otlp_receiver() as receiver:
        forwarder = ForwardingSpanExporter(receiver.url, timeout=5.0)
        try:
            assert forwarder.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
            assert forwarder.started == 0
            assert [s.name for s in receiver.snapshot()] == ["here"]
        finally:
            forwarder.shutdown()
