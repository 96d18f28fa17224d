"""One run of an enabled plugin: what its subtree's actors share, and the calls into it.

A :class:`PluginRun` lives from an enable (or a restart) to the next disable:
the plugin instance, its grant and capability gate, its circuit breaker, and
the *runtime* its host actor installs while it is up (an in-process one for
``inline``, the child process for ``process``). Every call into the plugin
goes through :meth:`PluginRun.call`: no runtime means
:class:`PluginUnavailable`; an open breaker sheds the call at once
(:class:`CircuitOpen`); otherwise the runtime enforces the deadline.

::

    /app/plugins/<name>          supervisor (rest_for_one, intensity, backoff)
      /app/plugins/<name>/host   PluginHost or ProcessHost: the runtime; breaker, gate
      /app/plugins/<name>/on-1   PluginSubscriber: the bus's deliveries -> run.deliver
      /app/plugins/<name>/...    an inline plugin's own actors
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .._exceptions import CircuitOpen, DomainError, UnknownMessage
from ..actors import Actor
from ..modules import Module
from ..resilience import CircuitBreaker
from ..transport import Envelope
from ._api import (
    Capabilities,
    Endpoint,
    Limits,
    Plugin,
    PluginRequest,
    PluginResponse,
    event_matches,
)
from ._context import PluginContext, Scope
from ._errors import CapabilityDenied, PluginTimeout, PluginUnavailable
from ._gate import CapabilityGate

__all__ = ("PluginRun", "PluginSubscriber", "Runtime")

T = TypeVar("T")
_CALLS = itertools.count(1)


class Runtime(Protocol):
    """Where a plugin runs: in-process or in its child (installed by the host actor)."""

    async def deliver(self, index: int, envelope: Envelope, scope: Scope) -> None: ...

    async def request(
        self, endpoint: Endpoint, request: PluginRequest, scope: Scope
    ) -> PluginResponse: ...


def new_scope(tenant: str | None) -> Scope:
    return Scope(next(_CALLS), tenant)


@dataclass(eq=False)
class PluginRun:
    """The shared state of one run of plugin ``name`` (see the module docstring)."""

    name: str
    plugin: type[Plugin]
    location: tuple[str, ...]
    instance: Plugin
    module: Module
    grants: Capabilities
    gate: CapabilityGate
    context: PluginContext
    breaker: CircuitBreaker
    limits: Limits
    settings: dict[str, Any]
    #: ``(subscription index in the Module, pattern subscribed)``, narrowed to the grant.
    plan: list[tuple[int, str]] = field(default_factory=list)
    refused_subscriptions: list[str] = field(default_factory=list)
    runtime: Runtime | None = None
    calls: Counter[str] = field(default_factory=Counter)
    switched_on: Callable[[str], bool] = lambda tenant: False
    #: Extra facts the host shows (pid, exits) for ``GET /system/plugins``.
    host_facts: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    #: Called after every call and skipped event (the manager's waiters look again).
    notify: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.endpoints = {e.key: e for e in self.module.route_table()}

    @property
    def isolation(self) -> str:
        return self.plugin.isolation

    async def call(self, fn: Callable[[Runtime], Awaitable[T]]) -> T:
        try:
            return await self._call(fn)
        finally:
            self.notify()

    async def _call(self, fn: Callable[[Runtime], Awaitable[T]]) -> T:
        runtime = self.runtime
        if runtime is None:
            self.calls["unavailable"] += 1
            raise PluginUnavailable(self.name, "it is not running right now")
        try:
            result = await self.breaker.call(fn, runtime)
        except CircuitOpen:
            self.calls["shed"] += 1
            raise
        except PluginTimeout:
            self.calls["timeouts"] += 1
            raise
        except DomainError as exc:
            self.calls["refused" if isinstance(exc, CapabilityDenied) else "answered"] += 1
            raise
        except Exception:
            self.calls["failed"] += 1
            raise
        self.calls["ok"] += 1
        return result

    async def deliver(self, index: int, envelope: Envelope) -> None:
        scope = new_scope(envelope.tenant_id)
        await self.call(lambda runtime: runtime.deliver(index, envelope, scope))

    async def request(self, key: str, request: PluginRequest) -> PluginResponse:
        """Call this run's endpoint ``key`` (``"GET /path"``): its own instance's handler."""
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            raise PluginUnavailable(self.name, f"this run of it has no endpoint {key}")
        scope = new_scope(request.tenant)
        return await self.call(lambda runtime: runtime.request(endpoint, request, scope))

    def statistics(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            **self.gate.statistics(),
            "refused_subscriptions": list(self.refused_subscriptions),
            **self.host_facts,
        }


class PluginSubscriber(Actor):
    """The bus's deliveries of one granted pattern to the plugin (``on-<n>``).

    Skips events of tenants that have not switched the plugin on; an event
    outside the grant (which the bus should never send) is refused and counted.
    A failed call raises, so the bus retries it with backoff and finally
    dead-letters it (replayable); while the breaker is open each attempt fails
    at once without reaching the plugin.
    """

    def __init__(self, run: PluginRun, index: int, pattern: str) -> None:
        self._run = run
        self._index = index
        self._pattern = pattern

    async def receive(self, message: Any) -> None:
        if not isinstance(message, Envelope):
            raise UnknownMessage(self.ctx.path, message, (Envelope,))
        run = self._run
        if not event_matches(self._pattern, message.event_type) or not run.grants.may_subscribe(
            message.event_type
        ):
            run.gate.refused["subscribe"] += 1
            return
        tenant = message.tenant_id
        if tenant is None or not run.switched_on(tenant):
            run.calls["skipped"] += 1
            run.notify()
            return
        await run.deliver(self._index, message)
