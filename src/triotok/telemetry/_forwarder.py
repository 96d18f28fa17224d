"""The span forwarder: a child process that encodes spans to OTLP and sends them.

Run as a script (``python _forwarder.py ENDPOINT [TIMEOUT]``) by
:class:`~triotok.telemetry._forward.ForwardingSpanExporter`, never imported
by the server: it loads only the OpenTelemetry SDK and its OTLP/HTTP
exporter, not TrioToK.

Protocol, on stdin and stdout (the parent is the only peer, so the frames
are pickles of plain tuples, see :func:`flatten`):

* the parent writes a frame: a 4-byte little-endian length, then that many
  bytes, a pickled batch;
* the forwarder rebuilds the batch's spans, exports them with
  ``OTLPSpanExporter`` (its own retries and timeout), and answers one byte:
  ``1`` exported, ``0`` not;
* at the end of stdin it shuts the exporter down and exits 0.

:func:`flatten` and :func:`restore` live here so that both sides agree on
the tuples; a test checks that a restored span encodes to the same OTLP
bytes as the original.
"""

from __future__ import annotations

import pickle
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

HEADER = struct.Struct("<I")

Flat = tuple[Any, ...]


def _context(context: SpanContext | None) -> Flat | None:
    if context is None:
        return None
    state = tuple(context.trace_state.items()) if context.trace_state else ()
    return (context.trace_id, context.span_id, context.is_remote, int(context.trace_flags), state)


def flatten(spans: Sequence[ReadableSpan]) -> Flat:
    """``spans`` as plain tuples: (resources, scopes, spans), each resource and scope once."""
    resources: dict[int, int] = {}
    resource_list: list[Flat] = []
    scopes: dict[int, int] = {}
    scope_list: list[Flat | None] = []
    out: list[Flat] = []
    for span in spans:
        resource = span.resource
        r = resources.get(id(resource))
        if r is None:
            r = resources[id(resource)] = len(resource_list)
            resource_list.append((dict(resource.attributes), resource.schema_url))
        scope = span.instrumentation_scope
        s = scopes.get(id(scope))
        if s is None:
            s = scopes[id(scope)] = len(scope_list)
            scope_list.append(
                None
                if scope is None
                else (scope.name, scope.version, scope.schema_url, dict(scope.attributes or {}))
            )
        events = [
            (e.name, e.timestamp, dict(e.attributes or {}), e.dropped_attributes)
            for e in span.events
        ]
        links = [
            (_context(link.context), dict(link.attributes or {}), link.dropped_attributes)
            for link in span.links
        ]
        status = span.status
        out.append(
            (
                span.name,
                _context(span.context),
                _context(span.parent),
                span.kind.value,
                span.start_time,
                span.end_time,
                dict(span.attributes or {}),
                span.dropped_attributes,
                events,
                span.dropped_events,
                links,
                span.dropped_links,
                status.status_code.value,
                status.description,
                r,
                s,
            )
        )
    return (resource_list, scope_list, out)


def _attributes(values: dict[str, Any], dropped: int) -> Any:
    if not dropped:
        return values
    bounded = BoundedAttributes(maxlen=None, attributes=values, immutable=False)
    bounded.dropped = dropped
    return bounded


def _bounded(items: list[Any], dropped: int) -> Any:
    if not dropped:
        return items
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


def _restore_context(flat: Flat | None) -> SpanContext | None:
    if flat is None:
        return None
    trace_id, span_id, is_remote, flags, state = flat
    return SpanContext(
        trace_id, span_id, is_remote, TraceFlags(flags), TraceState(list(state)) if state else None
    )


def restore(flat: Flat) -> list[ReadableSpan]:
    """The spans :func:`flatten` made ``flat`` of."""
    resource_list, scope_list, spans = flat
    resources = [Resource(attributes, schema_url) for attributes, schema_url in resource_list]
    scopes = [
        None if s is None else InstrumentationScope(s[0], s[1], s[2], s[3] or None)
        for s in scope_list
    ]
    out = []
    for (
        name,
        context,
        parent,
        kind,
        start,
        end,
        attributes,
        dropped,
        events,
        dropped_events,
        links,
        dropped_links,
        code,
        description,
        r,
        s,
    ) in spans:
        restored_events = [Event(n, _attributes(a, d), ts) for n, ts, a, d in events]
        restored_links = [Link(_restore_context(c), _attributes(a, d)) for c, a, d in links]  # type: ignore[arg-type]  # a link's context is never None
        out.append(
            ReadableSpan(
                name=name,
                context=_restore_context(context),
                parent=_restore_context(parent),
                resource=resources[r],
                attributes=_attributes(attributes, dropped),
                events=_bounded(restored_events, dropped_events),
                links=_bounded(restored_links, dropped_links),
                kind=SpanKind(kind),
                status=Status(StatusCode(code), description),
                start_time=start,
                end_time=end,
                instrumentation_scope=scopes[s],
            )
        )
    return out


def frames(stream: Any) -> Iterable[bytes]:
    """The frames on ``stream`` (a binary file) until its end."""
    while True:
        head = stream.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        (size,) = HEADER.unpack(head)
        body = stream.read(size)
        if len(body) < size:
            return
        yield body


def main(argv: Sequence[str]) -> int:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    endpoint, timeout = argv[0], float(argv[1]) if argv[1:] and argv[1] else None
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout)
    out = sys.stdout.buffer
    try:
        for body in frames(sys.stdin.buffer):
            try:
                result = exporter.export(restore(pickle.loads(body)))
                ok = result is SpanExportResult.SUCCESS
            except Exception as error:  # answered, never fatal
                print(f"triotok span forwarder: {error!r}", file=sys.stderr)
                ok = False
            out.write(b"1" if ok else b"0")
            out.flush()
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
