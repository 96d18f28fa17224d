"""``isolation = "inline"``: a trusted plugin runs in the platform's process, still supervised.

:class:`PluginHost` is the plugin's ``host`` actor: each incarnation calls
the plugin's ``initialize`` (through the breaker, within ``start_timeout``)
and installs an :class:`InlineRuntime`; stopping calls ``shutdown``. Calls
run in the caller's task under the per-call deadline (``trio.fail_after``),
which cancels an awaiting plugin but cannot stop one that never yields: only
process isolation can (docs/adr/0008-plugin-isolation.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..actors import Actor, UnknownMessage
from ..modules import ModuleContext
from ..transport import Envelope
from ._api import Endpoint, PluginRequest, PluginResponse
from ._context import Scope, scoped
from ._errors import PluginTimeout
from ._run import PluginRun
from ._wire import response_from_result

__all__ = ("InlineRuntime", "PluginHost")


class InlineRuntime:
    """Calls the plugin's handlers directly, in scope, under the deadline."""

    def __init__(self, run: PluginRun, module_context: ModuleContext) -> None:
        self._run = run
        self._handlers: dict[int, Callable[[Envelope], Awaitable[None]]] = {
            index: run.module.subscriptions[index].handler(module_context) for index, _ in run.plan
        }

    async def deliver(self, index: int, envelope: Envelope, scope: Scope) -> None:
        handler = self._handlers[index]
        with scoped(scope), _deadline(self._run):
            await handler(envelope)

    async def request(
        self, endpoint: Endpoint, request: PluginRequest, scope: Scope
    ) -> PluginResponse:
        with scoped(scope), _deadline(self._run):
            result = await endpoint.handler(request)
        return response_from_result(result, endpoint.status)


class _deadline:
    """``trio.fail_after(limits.deadline)``, raising :class:`PluginTimeout`."""

    def __init__(self, run: PluginRun, seconds: float | None = None) -> None:
        self._run = run
        self._scope = trio.CancelScope(
            deadline=trio.current_time() + (seconds if seconds is not None else run.limits.deadline)
        )

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        handled = self._scope.__exit__(*exc)
        if self._scope.cancelled_caught:
            raise PluginTimeout(self._run.name, f"a call took over {self._run.limits.deadline:g}s")
        return bool(handled)


class PluginHost(Actor):
    """The ``host`` of an inline plugin: runs ``initialize``/``shutdown``, installs the runtime."""

    def __init__(self, run: PluginRun, module_context: ModuleContext) -> None:
        self._run = run
        self._module_context = module_context

    async def on_start(self) -> None:
        run = self._run
        self.ctx.register("calls", run.breaker)
        self.ctx.register("plugin", run)

        async def initialize() -> None:
            with _deadline(run, run.limits.start_timeout):
                await run.instance.initialize(run.context)

        await run.breaker.call(initialize)
        run.runtime = InlineRuntime(run, self._module_context)
        run.host_facts = {"isolation": "inline"}

    async def on_stop(self) -> None:
        run = self._run
        run.runtime = None
        with trio.move_on_after(run.limits.deadline):
            await run.instance.shutdown()

    async def receive(self, message: Any) -> Any:
        raise UnknownMessage(self.ctx.path, message, ())
