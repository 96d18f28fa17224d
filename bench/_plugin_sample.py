"""The benchmark's plugins, in a module of their own: a process plugin's child imports it.

Kept light (no numpy, no HTTP layer): what it imports is what each child
imports on top of the forkserver's preloaded platform code.
"""

from __future__ import annotations

from dataclasses import dataclass

from triotok.modules import Module, Subscription
from triotok.plugins import Capabilities, Limits, Metadata, Plugin, PluginContext
from triotok.transport import Envelope, event

TENANT = "bench"


@event("bench.plugin_ping")
@dataclass(frozen=True, slots=True)
class Ping:
    """The benchmark's event."""

    key: str


class InlineBench(Plugin):
    """Counts the events it receives (in-process)."""

    metadata = Metadata("bench-inline", "1.0.0", api="^1.0")
    capabilities = Capabilities(subscribe=("bench.plugin_ping",))
    isolation = "inline"
    limits = Limits(deadline=30.0, start_timeout=60.0)

    def __init__(self) -> None:
        self.count = 0

    def module(self) -> Module:
        return Module(
            name=self.metadata.name,
            subscriptions=(Subscription("bench.plugin_ping", lambda _: self.on_ping),),
        )

    async def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def on_ping(self, envelope: Envelope) -> None:
        self.count += 1


class ProcessBench(InlineBench):
    """The same, in its child process."""

    metadata = Metadata("bench-process", "1.0.0", api="^1.0")
    isolation = "process"
