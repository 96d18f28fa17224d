"""A third-party plugin: counts a tenant's content nodes and greets (process-isolated)."""

from __future__ import annotations

from typing import Any

from triotok.modules import Module, Subscription
from triotok.plugins import Capabilities, Endpoint, Metadata, Plugin, PluginContext, PluginRequest
from triotok.transport import Envelope


class Hello(Plugin):
    metadata = Metadata("hello", "1.2.0", api="^1.0", description="greets and counts nodes")
    capabilities = Capabilities(subscribe=("content.node.*",), routes=True, storage="hello")

    def module(self) -> Module:
        return Module(
            name="hello",
            routes=lambda: (Endpoint("GET", "/greeting", self.greet, "Say hello"),),
            subscriptions=(Subscription("content.node.created", lambda _: self.on_node),),
        )

    async def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def on_node(self, envelope: Envelope) -> None:
        count = await self.ctx.storage.get("nodes") or 0
        await self.ctx.storage.put("nodes", count + 1)

    async def greet(self, request: PluginRequest) -> Any:
        import os

        nodes = await self.ctx.storage.get("nodes") or 0
        return {"hello": request.tenant, "nodes": nodes, "pid": os.getpid()}
