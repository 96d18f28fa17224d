"""The facade the composition root wires: one :class:`Telemetry` per application."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import trio

from ..store import Store
from ..transport import DeliveryHook, Envelope
from ._asgi import SCOPE_KEY
from ._options import TelemetryOptions

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import Span

    from ._metrics import Metrics
    from ._tracing import Tracing

__all__ = ("Telemetry", "span")

#: The tracing of the application installed last in this process (for :func:`span`).
_current: Tracing | None = None

SpanKindName = Literal["internal", "client", "server", "producer", "consumer"]


class Telemetry:
    """Traces and metrics of one application, and the hooks that plug them into it.

    Nothing is imported or wrapped for what ``options`` leaves off: with
    tracing off no OpenTelemetry module is loaded, with metrics off no
    ``prometheus_client``, and with both off :meth:`asgi`,
    :meth:`instrument_store`, :meth:`wrap_sink` give back what they get.

    ::

        telemetry = Telemetry(TelemetryOptions(tracing="otlp"))
        telemetry.install(system)                       # before spawning the actors
        handle = StoreHandle(wrap=telemetry.instrument_store)
        bus.delivery_hook = telemetry.bus_hook()
        ...
        await telemetry.aclose()                        # flush the spans
    """

    def __init__(
        self, options: TelemetryOptions, *, span_processor: SpanProcessor | None = None
    ) -> None:
        global _current
        self.options = options
        self.tracing: Tracing | None = None
        self.metrics: Metrics | None = None
        if options.tracing != "off":
            from ._logs import tracing_installed
            from ._tracing import Tracing

            self.tracing = Tracing(options, processor=span_processor)
            tracing_installed()
            _current = self.tracing
        if options.metrics:
            from ._metrics import Metrics

            self.metrics = Metrics()

    @property
    def enabled(self) -> bool:
        return self.tracing is not None or self.metrics is not None

    def install(self, system: Any) -> None:
        """Plug into ``system`` (an ActorSystem): before spawning what should be traced."""
        if self.tracing is not None:
            self.tracing.install(system.runtime)
        if self.metrics is not None:
            self.metrics.watch(system)

    def instrument_store(self, store: Store) -> Store:
        """``store`` reporting db spans and statement timings (itself when all is off)."""
        if not self.enabled:
            return store
        from ._store import InstrumentedStore

        instrumented: Store = InstrumentedStore(store, tracing=self.tracing, metrics=self.metrics)
        return instrumented

    def bus_hook(self) -> DeliveryHook | None:
        """The event bus's ``delivery_hook`` (``None`` when all is off)."""
        if not self.enabled:
            return None
        from ._events import BusInstrumentation

        return BusInstrumentation(self.tracing, self.metrics)

    def wrap_sink(
        self, sink: Callable[[Envelope], Awaitable[None]]
    ) -> Callable[[Envelope], Awaitable[None]]:
        """The relay's sink, each delivery a consumer span (``sink`` itself without tracing)."""
        return sink if self.tracing is None else self.tracing.wrap_sink(sink)

    def asgi(self, app: Any) -> Any:
        """``app`` wrapped in the telemetry middleware (``app`` itself when all is off)."""
        if not self.enabled:
            return app
        from ._asgi import TelemetryMiddleware

        return TelemetryMiddleware(app, tracing=self.tracing, metrics=self.metrics)

    def set_route(self, scope: Any, template: str) -> None:
        """Tell the middleware the route template ``scope``'s request matched."""
        info = scope.get(SCOPE_KEY)
        if info is not None:
            info.route = template

    def tenant_timer(self) -> Callable[[float], None] | None:
        """What times tenant resolutions (``None`` without metrics)."""
        return None if self.metrics is None else self.metrics.observe_tenant_resolution

    async def flush(self) -> None:
        """Export the spans buffered so far (in a thread: the exporter blocks)."""
        if self.tracing is not None:
            await trio.to_thread.run_sync(self.tracing.force_flush)

    async def aclose(self) -> None:
        """Flush and stop the span exporter; the metrics stay readable."""
        global _current
        tracing = self.tracing
        if tracing is not None:
            if _current is tracing:
                _current = None
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(tracing.shutdown)


@contextlib.contextmanager
def span(
    name: str, *, kind: SpanKindName = "internal", attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """A child span of the current one (a payment-provider call, a slow step), or nothing.

    Yields ``None`` when tracing is off or the current task is in no
    recording span: instrumenting a call costs nothing then.

    ::

        with span("payments charge", kind="client", attributes={"payment.provider": "acme"}):
            await provider.charge(order)
    """
    tracing = _current
    if tracing is None or not tracing.recording():
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracing.scope(name, None, SpanKind[kind.upper()], attributes) as opened:
        yield opened
