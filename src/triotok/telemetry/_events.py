"""The bus seen through telemetry: a consumer span and timings around every handler attempt."""

from __future__ import annotations

from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..transport import Envelope

if TYPE_CHECKING:
    from ._metrics import Metrics
    from ._tracing import SpanScope, Tracing

__all__ = ("BusInstrumentation",)


class BusInstrumentation:
    """The bus's :class:`~triotok.transport.DeliveryHook` (``bus.delivery_hook = ...``).

    ``capture`` keeps the delivering task's context (a relay's delivery span)
    with each delivery, so the handler's span is its child; a delivery with
    none (an in-memory publish outside a trace) continues ``Envelope.trace_id``.
    """

    def __init__(self, tracing: Tracing | None, metrics: Metrics | None) -> None:
        self.tracing = tracing
        self.metrics = metrics

    def capture(self) -> Any:
        tracing = self.tracing
        if tracing is None or not tracing.active:
            return None
        return tracing.capture(None)

    def handling(
        self, envelope: Envelope, consumer: str, subscriber: str, attempt: int, context: Any
    ) -> _Attempt:
        scope = None
        tracing = self.tracing
        if tracing is not None:
            from opentelemetry.trace import SpanKind

            scope = tracing.scope(
                f"bus handle {envelope.event_type}",
                tracing.consumer_parent(envelope, context),
                SpanKind.CONSUMER,
                {
                    "messaging.system": "triotok.bus",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": envelope.event_type,
                    "messaging.consumer.group.name": consumer,
                    "messaging.message.id": str(envelope.id),
                    "triotok.subscriber": subscriber,
                    "triotok.attempt": attempt,
                },
            )
        return _Attempt(self.metrics, envelope.event_type, consumer, scope)


class _Attempt:
    __slots__ = ("_consumer", "_event_type", "_metrics", "_scope", "_started")

    def __init__(
        self, metrics: Metrics | None, event_type: str, consumer: str, scope: SpanScope | None
    ) -> None:
        self._metrics = metrics
        self._event_type = event_type
        self._consumer = consumer
        self._scope = scope
        self._started = 0.0

    def __enter__(self) -> None:
        if self._scope is not None:
            self._scope.__enter__()
        self._started = perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._metrics is not None and (exc is None or isinstance(exc, Exception)):
            self._metrics.observe_handled(
                self._event_type, self._consumer, perf_counter() - self._started, exc is None
            )
        if self._scope is not None:
            self._scope.__exit__(exc_type, exc, tb)
