"""Parent-based ratio sampling through the actor seams, and breaker transitions as span events."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from triotok import Actor, open_system
from triotok.actors import _ref  # the refs' process-wide capture gate
from triotok.actors.lowlevel import TracedActorRef
from triotok.modules.orders import ManualProvider, Payments, ProviderUnavailable
from triotok.resilience import CircuitBreaker
from triotok.telemetry import Telemetry, TelemetryOptions, span

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        with span("echo work"):
            return message


class Guarded(Actor):
    """Calls a failing dependency through a breaker that opens on the first failure."""

    async def on_start(self) -> None:
        self.breaker = CircuitBreaker("dependency", window_size=1, minimum_calls=1)
        self.ctx.register("dependency", self.breaker)

    async def receive(self, message: Any) -> Any:
        async def fail() -> None:
            raise RuntimeError("down")

        try:
            await self.breaker.call(fail)
        except RuntimeError:
            return "failed"
        return "ok"


def _telemetry(ratio: float) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(
        TelemetryOptions(tracing="console", sample_ratio=ratio, metrics=False),
        span_processor=SimpleSpanProcessor(exporter),
    )
    return telemetry, exporter


async def _ask_under(telemetry: Telemetry, traceparent: str | None, factory: Any) -> Any:
    from triotok.telemetry._tracing import extract  # the layer's own helper

    tracing = telemetry.tracing
    assert tracing is not None
    async with open_system() as system:
        telemetry.install(system)
        ref = await system.spawn(factory, name="target")
        assert isinstance(ref, TracedActorRef)
        with tracing.scope("root", extract(traceparent)):
            reply = await ref.ask("hello")
        assert tracing.active == 0
        assert (_ref._open_scopes, _ref._capturing) == (0, False)  # the process gate closed
    await telemetry.aclose()
    return reply


async def test_ratio_zero_records_nothing_for_a_new_trace() -> None:
    telemetry, exporter = _telemetry(0.0)
    assert await _ask_under(telemetry, None, Echo) == "hello"
    assert exporter.get_finished_spans() == ()


async def test_ratio_zero_follows_a_sampled_caller() -> None:
    telemetry, exporter = _telemetry(0.0)
    await _ask_under(telemetry, SAMPLED, Echo)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"root", "str /app/target", "echo work"}
    assert spans["root"].parent is not None
    assert spans["root"].parent.span_id == 0xB7AD6B7169203331
    assert spans["str /app/target"].parent.span_id == spans["root"].context.span_id
    assert spans["echo work"].parent.span_id == spans["str /app/target"].context.span_id


async def test_ratio_one_records_every_new_trace() -> None:
    telemetry, exporter = _telemetry(1.0)
    tracing = telemetry.tracing
    assert tracing is not None
    for _ in range(20):
        with tracing.scope("root"):
            pass
    await telemetry.aclose()
    roots = exporter.get_finished_spans()
    assert len(roots) == 20 == len({s.context.trace_id for s in roots})
    assert all(s.parent is None and s.context.trace_flags.sampled for s in roots)


def test_the_resource_hashes_like_the_sdk_one_and_encodes_the_same() -> None:
    telemetry, exporter = _telemetry(1.0)
    tracing = telemetry.tracing
    assert tracing is not None
    with tracing.scope("work", None, attributes={"k": "v"}):
        pass
    (finished,) = exporter.get_finished_spans()
    resource = finished.resource
    plain = Resource(resource.attributes, resource.schema_url)
    assert type(resource) is not Resource  # the cached-hash subclass
    assert resource == plain
    assert plain == resource
    assert hash(resource) == hash(plain) == hash(resource)  # the second from the cache
    assert Resource({"other": 1}) != resource
    encoded = encode_spans([finished])
    (group,) = encoded.resource_spans
    assert {a.key for a in group.resource.attributes} >= {"service.name", "service.instance.id"}
    assert encoded.SerializeToString() == encode_spans([finished]).SerializeToString()


async def test_an_unsampled_caller_is_never_traced_whatever_the_ratio() -> None:
    telemetry, exporter = _telemetry(1.0)
    await _ask_under(telemetry, UNSAMPLED, Echo)
    assert exporter.get_finished_spans() == ()


async def test_a_breaker_transition_is_an_event_of_the_current_span() -> None:
    telemetry, exporter = _telemetry(1.0)
    assert await _ask_under(telemetry, None, Guarded) == "failed"
    (message,) = [s for s in exporter.get_finished_spans() if s.name == "str /app/target"]
    (event,) = message.events
    assert event.name == "breaker.transition"
    attributes = dict(event.attributes or {})
    reason = attributes.pop("triotok.breaker.reason")
    assert attributes == {
        "triotok.breaker.name": "dependency",
        "triotok.breaker.from": "closed",
        "triotok.breaker.to": "open",
    }
    assert isinstance(reason, str)
    assert reason


async def test_span_is_a_no_op_without_tracing() -> None:
    with span("nothing") as opened:
        assert opened is None


class _Broken:
    """A payment provider that always fails (the breaker counts it)."""

    name = "broken"

    async def charge(self, **_: Any) -> Any:
        raise ProviderUnavailable("provider down")

    async def refund(self, **_: Any) -> Any:
        raise ProviderUnavailable("provider down")


class Payer(Actor):
    """Charges an order through the orders module's gateway: one good, one broken provider."""

    async def on_start(self) -> None:
        self.payments = Payments(ManualProvider(), tenants={"broke": _Broken()})

    async def receive(self, message: Any) -> Any:
        try:
            charge = await self.payments.charge(
                tenant_id=message,
                order_id="o-1",
                amount=1290,
                currency="EUR",
                idempotency_key="o-1:charge",
            )
        except ProviderUnavailable:
            return "unavailable"
        return charge.charge_id


async def test_payment_provider_calls_are_client_spans_of_the_message() -> None:
    from triotok.telemetry._tracing import extract

    telemetry, exporter = _telemetry(1.0)
    tracing = telemetry.tracing
    assert tracing is not None
    async with open_system() as system:
        telemetry.install(system)
        ref = await system.spawn(Payer, name="payer")
        with tracing.scope("root", extract(SAMPLED)):
            assert await ref.ask("acme") == "manual-o-1"
            assert await ref.ask("broke") == "unavailable"
    await telemetry.aclose()
    spans = exporter.get_finished_spans()
    messages = [s for s in spans if s.name == "str /app/payer"]
    calls = [s for s in spans if s.name == "payments charge"]
    assert len(messages) == len(calls) == 2
    for message, call in zip(messages, calls, strict=True):
        assert call.kind.name == "CLIENT"
        assert call.parent is not None
        assert call.parent.span_id == message.context.span_id
    ok, failed = (dict(c.attributes or {}) for c in calls)
    assert ok == {
        "payment.operation": "charge",
        "payment.provider": "manual",
        "triotok.tenant.id": "acme",
        "payment.outcome": "ok",
    }
    assert failed == {
        "payment.operation": "charge",
        "payment.provider": "broken",
        "triotok.tenant.id": "broke",
        "payment.outcome": "unavailable",
        "error.type": "ProviderUnavailable",
    }
