"""Shared pieces of the bus tests: event types in a private registry, a recording subscriber.

No tests here; the bus test modules import from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import trio

from triotok import Actor
from triotok.supervision import Backoff
from triotok.transport import Envelope, EventBus, RetryPolicy, SchemaRegistry, open_event_bus

REGISTRY = SchemaRegistry()


@REGISTRY.event("product.created", version=1)
@dataclass(frozen=True)
class ProductCreated:
    key: str
    n: int


@REGISTRY.event("product.deleted", version=1)
@dataclass(frozen=True)
class ProductDeleted:
    key: str
    n: int


@REGISTRY.event("order.paid", version=1)
@dataclass(frozen=True)
class OrderPaid:
    aggregate_id: str
    n: int


#: 5 attempts, delays 0.1, 0.2, 0.4, 0.8 (no jitter), asks time out after 1 s.
NO_JITTER = RetryPolicy(attempts=5, backoff=Backoff(min=0.1, max=10.0, jitter=0.0), timeout=1.0)


def env(payload: Any, *, tenant: str | None = "acme") -> Envelope:
    """An envelope of one of this module's payloads."""
    return Envelope.new(payload, tenant_id=tenant, registry=REGISTRY)


class Seen(NamedTuple):
    """One hand-over a :class:`Recorder` saw (``ok`` false when it raised)."""

    at: float
    path: str
    event_type: str
    key: str
    n: int
    retry: int
    ok: bool
    envelope: Envelope


#: Decides what a Recorder does with an envelope: None handles it, an exception is raised.
Script = Callable[[Envelope], BaseException | None]


class Recorder(Actor):
    """Records every envelope it is asked about; raises what ``script`` returns.

    ``log`` and ``script`` are shared by every incarnation, so records
    survive the restarts that failures cause. With ``gate`` set it waits for
    the gate before handling (to hold the subscription up).
    """

    def __init__(
        self, log: list[Seen], script: Script | None = None, gate: trio.Event | None = None
    ) -> None:
        self.log = log
        self.script = script
        self.gate = gate

    async def receive(self, message: Any) -> Any:
        envelope: Envelope = message
        if self.gate is not None:
            await self.gate.wait()
        payload = envelope.payload
        key = str(getattr(payload, "key", None) or getattr(payload, "aggregate_id", ""))
        error = self.script(envelope) if self.script is not None else None
        self.log.append(
            Seen(
                trio.current_time(),
                self.ctx.path,
                envelope.event_type,
                key,
                payload.n,
                envelope.retry_count,
                error is None,
                envelope,
            )
        )
        if error is not None:
            raise error
        return "ok"


def handled(log: list[Seen], path: str | None = None) -> list[Seen]:
    """The successful hand-overs (to ``path`` if given)."""
    return [s for s in log if s.ok and (path is None or s.path == path)]


@asynccontextmanager
async def open_bus(system: Any, **options: Any) -> AsyncIterator[EventBus]:
    """An event bus on the test registry with :data:`NO_JITTER` unless told otherwise."""
    options.setdefault("retry", NO_JITTER)
    async with open_event_bus(system, registry=REGISTRY, **options) as bus:
        yield bus
