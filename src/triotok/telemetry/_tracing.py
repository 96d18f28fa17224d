"""Traces: an OpenTelemetry tracer provider and the scopes every instrumented seam opens.

Imported only when tracing is configured (the SDK costs ~100 ms and ~15 MB).

Invariants and reasons:

* one :class:`TracerProvider` per :class:`Tracing`, never the global one:
  several applications in one process (the tests) each export their own
  spans, and ``shutdown`` flushes exactly theirs;
* ``active`` counts the recording spans made current by a :class:`SpanScope`
  that are still open, in any task, and :func:`track_capture` the same for
  the whole process. Traced refs skip capturing while the latter is 0, so
  tracing installed with nothing sampled costs one global test per ``tell``;
* a context is captured only when its span is sampled: the children of an
  unsampled span would be dropped by the parent-based sampler anyway;
* db spans, activation spans and breaker events never start a trace: they
  appear only under a recording span (a stray relay poll makes no trace).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import trio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, SpanContext, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..actors import ActorState
from ..actors.lowlevel import ActorCell, AskRequest, Node, track_capture
from ..resilience import BreakerTransition
from ..transport import Envelope
from ._options import TelemetryOptions

__all__ = ("SpanScope", "Tracing", "traceparent_of")

logger = logging.getLogger("triotok.telemetry")

_PROPAGATOR = TraceContextTextMapPropagator()
Context = otel_context.Context


def traceparent_of(span_context: SpanContext) -> str:
    """The W3C ``traceparent`` header value of ``span_context``."""
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def extract(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The remote parent context a ``traceparent`` names (``None`` if absent or invalid)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


class _Resource(Resource):
    """A :class:`Resource` that computes its hash once.

    The OTLP encoder groups every exported span by its resource in a dict,
    and ``Resource.__hash__`` serialises the attributes to JSON on each call:
    a quarter of the exporter's CPU per span. The attributes are immutable,
    so the hash never changes.
    """

    _hash: int | None = None

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = super().__hash__()
        return self._hash

    def __eq__(self, other: object) -> bool:  # defined with __hash__, as the base does
        return super().__eq__(other)


class SpanScope:
    """``with``: start a span under ``parent``, make it current, end it on the way out.

    An exception (not a cancellation) marks the span as an error and is
    recorded on it; it always propagates.
    """

    __slots__ = (
        "_attributes",
        "_counted",
        "_kind",
        "_name",
        "_parent",
        "_token",
        "_tracing",
        "span",
    )

    def __init__(
        self,
        tracing: Tracing,
        name: str,
        parent: Context | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self._tracing = tracing
        self._name = name
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._token: object = None
        self._counted = False
        self.span: Span = trace.INVALID_SPAN

    def __enter__(self) -> Span:
        tracing = self._tracing
        parent = self._parent
        span = tracing.tracer.start_span(
            self._name, context=parent, kind=self._kind, attributes=self._attributes
        )
        self.span = span
        self._token = otel_context.attach(trace.set_span_in_context(span, parent))
        if span.is_recording():
            self._counted = True
            tracing.active += 1
            track_capture(1)
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self.span
        if exc is not None and isinstance(exc, Exception):
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
        span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]  # attach's own token
        if self._counted:
            self._tracing.active -= 1
            track_capture(-1)


class Tracing:
    """The tracer of one application, and the hooks it plugs into the core's seams.

    It is the runtime's :class:`~triotok.actors.lowlevel.ContextCapture`
    (``capture``, ``active``); :meth:`message_hook`, :meth:`on_state_change`
    and :meth:`on_register` are the other runtime hooks (see :meth:`install`).
    """

    def __init__(
        self, options: TelemetryOptions, *, processor: SpanProcessor | None = None
    ) -> None:
        self.options = options
        created = Resource.create(
            {
                "service.name": options.service_name,
                "service.version": options.service_version,
                "service.instance.id": options.instance_id,
            }
        )
        resource = _Resource(created.attributes, created.schema_url)
        sampler = ParentBased(_root_sampler(options.sample_ratio))
        self.provider = TracerProvider(resource=resource, sampler=sampler)
        if processor is None:
            processor = BatchSpanProcessor(_exporter(options))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("triotok", options.service_version or None)
        #: Open recording scopes (see the module invariants).
        self.active = 0
        #: Activations being timed: entity cell -> (start ns, parent context).
        self._activating: dict[Node, tuple[int, Context]] = {}

    # ------------------------------------------------------------------ spans

    def scope(
        self,
        name: str,
        parent: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
    ) -> SpanScope:
        """A :class:`SpanScope` (``parent=None``: the current context)."""
        return SpanScope(self, name, parent, kind, attributes)

    def recording(self) -> bool:
        """Whether the current task is inside a recording span."""
        return self.active > 0 and trace.get_current_span().is_recording()

    def current_traceparent(self) -> str | None:
        """The current span's ``traceparent``, or ``None`` outside a valid span."""
        span_context = trace.get_current_span().get_span_context()
        return traceparent_of(span_context) if span_context.is_valid else None

    # ------------------------------------------------------------------ the actor seams

    def install(self, runtime: Any) -> None:
        """Plug into ``runtime`` (a :class:`~triotok.actors.lowlevel.Runtime`) before spawning."""
        runtime.context_capture = self
        runtime.message_hook = self.message_hook
        previous_state = runtime.on_state_change
        previous_register = runtime.on_register

        def on_state_change(node: Node, state: ActorState) -> None:
            self.on_state_change(node, state)
            if previous_state is not None:
                previous_state(node, state)

        def on_register(node: Node, name: str, component: Any) -> None:
            self.on_register(node, name, component)
            if previous_register is not None:
                previous_register(node, name, component)

        runtime.on_state_change = on_state_change
        runtime.on_register = on_register

    def capture(self, message: Any) -> Context | None:
        """The current context when its span is sampled (sent with ``message``)."""
        ctx = otel_context.get_current()
        if trace.get_current_span(ctx).get_span_context().trace_flags.sampled:
            return ctx
        return None

    def message_hook(self, cell: ActorCell, message: Any, context: Any) -> SpanScope:
        """The span of one message handled by ``cell``, a child of its sender's context."""
        region = getattr(cell, "region", None)  # an entity: named after its region
        where = cell.path if region is None else region.path
        kind = type(message).__name__
        return SpanScope(
            self,
            f"{kind} {where}",
            context,
            SpanKind.INTERNAL,
            {"triotok.actor.path": cell.path, "triotok.message.type": kind},
        )

    def on_state_change(self, node: Node, state: ActorState) -> None:
        """Entity activations: a span from the activating command's arrival to RUNNING."""
        region = getattr(node, "region", None)
        if region is None:
            return
        if state is ActorState.RUNNING:
            if node.restarts or not isinstance(node, ActorCell) or not node.queue:
                return
            first = node.queue[0]
            if type(first) is not AskRequest or first.context is None:
                return
            now = time.time_ns()
            started = now
            if not first.is_tell:  # the ask's trio time: when the activation began
                waited = trio.current_time() - (first.deadline - first.timeout)
                started = now - max(0, int(waited * 1e9))
            span = self.tracer.start_span(
                f"activate {region.path}",
                context=first.context,
                kind=SpanKind.INTERNAL,
                attributes={"triotok.actor.path": node.path},
                start_time=started,
            )
            span.end(end_time=now)

    def on_register(self, node: Node, name: str, component: Any) -> None:
        """A registered circuit breaker's transitions become events of the current span."""
        subscribe = getattr(component, "subscribe", None)
        if subscribe is None or not hasattr(component, "force_open"):
            return  # not a breaker
        subscribe(self._breaker_event)

    def _breaker_event(self, transition: BreakerTransition) -> None:
        if not self.active:
            return
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "breaker.transition",
                {
                    "triotok.breaker.name": transition.name,
                    "triotok.breaker.from": transition.from_state.value,
                    "triotok.breaker.to": transition.to_state.value,
                    "triotok.breaker.reason": transition.reason,
                },
            )

    # ------------------------------------------------------------------ events

    def consumer_parent(self, envelope: Envelope, context: Any = None) -> Context | None:
        """The parent of a consumer span: ``context`` if given, else ``Envelope.trace_id``."""
        if context is not None:
            parent: Context = context
            return parent
        return extract(envelope.trace_id)

    def wrap_sink(
        self, sink: Callable[[Envelope], Awaitable[None]]
    ) -> Callable[[Envelope], Awaitable[None]]:
        """The relay's sink, each delivery in a consumer span continuing ``Envelope.trace_id``."""

        async def deliver(envelope: Envelope) -> None:
            attributes = {
                "messaging.system": "triotok.outbox",
                "messaging.operation.type": "receive",
                "messaging.destination.name": envelope.event_type,
                "messaging.message.id": str(envelope.id),
                "triotok.tenant.id": envelope.tenant_id or "",
            }
            with SpanScope(
                self,
                f"outbox deliver {envelope.event_type}",
                extract(envelope.trace_id),
                SpanKind.CONSUMER,
                attributes,
            ):
                await sink(envelope)

        return deliver

    # ------------------------------------------------------------------ lifecycle

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        """Export what is buffered now (blocks: call it from a thread in async code)."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the exporters (blocks: call it from a thread in async code)."""
        self.provider.shutdown()


def _root_sampler(ratio: float) -> Sampler:
    """The sampler of new traces: the constant ones at 0 and 1 (the same decisions as
    ``TraceIdRatioBased`` there, without its per-span arithmetic)."""
    if ratio >= 1.0:
        return ALWAYS_ON
    if ratio <= 0.0:
        return ALWAYS_OFF
    return TraceIdRatioBased(ratio)


def _exporter(options: TelemetryOptions) -> SpanExporter:
    if options.tracing == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=options.service_name)
    from ._forward import ForwardingSpanExporter

    return ForwardingSpanExporter(options.otlp_endpoint)
