"""Plugins the tests run: a well-behaved one that can also misbehave in every way.

They live in an importable module (``tests.plugins.sample``) because a
process-isolated plugin is imported again by its child process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from triotok import Actor
from triotok.modules import Module, ModuleContext, Subscription
from triotok.plugins import (
    Capabilities,
    Endpoint,
    Limits,
    Metadata,
    Plugin,
    PluginContext,
    PluginRequest,
    PluginResponse,
)
from triotok.supervision import ChildSpec
from triotok.transport import Envelope, event


@event("sample.noted")
@dataclass(frozen=True, slots=True)
class Noted:
    """What the sample plugins publish."""

    text: str


@event("sample.secret")
@dataclass(frozen=True, slots=True)
class Secret:
    """An event type no sample plugin is granted."""

    text: str


class NoteBody(Struct, frozen=True):
    """The body of ``POST /note``."""

    text: str = "hi"


API = "^1.0"
FAST = Limits(deadline=2.0, start_timeout=20.0, memory_mb=128, cpu_seconds=30)


class Recorder(Plugin):
    """Stores every event it receives and serves what it stored; publishes on request."""

    metadata = Metadata("recorder", "1.0.0", api=API, description="records events")
    capabilities = Capabilities(
        subscribe=("tenant.*", "sample.*", "content.*"),
        publish=("sample.noted",),
        routes=True,
        storage="recorder",
    )
    isolation = "process"
    limits = FAST

    def module(self) -> Module:
        return Module(
            name=self.metadata.name,
            routes=lambda: (
                Endpoint("GET", "/seen", self.seen, "What it stored"),
                Endpoint(
                    "POST", "/note", self.note, "Publish a note", action="create", body=NoteBody
                ),
                Endpoint("GET", "/crash", self.crash, "Exit the process"),
                Endpoint("GET", "/hang", self.hang, "Block forever"),
                Endpoint("GET", "/spin", self.spin, "Spin the CPU"),
                Endpoint("GET", "/bomb", self.bomb, "Allocate past the limit"),
                Endpoint("GET", "/secret", self.secret, "Publish what it may not"),
                Endpoint("GET", "/peek", self.peek, "Read another tenant's storage"),
                Endpoint("GET", "/elsewhere", self.elsewhere, "Read another namespace"),
                Endpoint("GET", "/pid", self.pid, "Its process id"),
                Endpoint("GET", "/fail", self.fail, "Raise an error"),
            ),
            subscriptions=(Subscription("sample.*", lambda _: self.on_event),),
        )

    async def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def on_event(self, envelope: Envelope) -> None:
        data = self.ctx.event_data(envelope)
        await self.ctx.storage.put(f"seen/{envelope.id}", {"type": envelope.event_type, **data})

    async def seen(self, request: PluginRequest) -> Any:
        items = await self.ctx.storage.list("seen/")
        return {"tenant": request.tenant, "items": [v for _, v in items]}

    async def note(self, request: PluginRequest) -> Any:
        await self.ctx.publish(Noted(request.body.text))
        return PluginResponse({"published": True}, 201)

    async def crash(self, request: PluginRequest) -> Any:
        os._exit(3)

    async def hang(self, request: PluginRequest) -> Any:
        time.sleep(3600)  # noqa: ASYNC251  # a hang that never yields: only the deadline ends it

    async def spin(self, request: PluginRequest) -> Any:
        while True:
            pass

    async def bomb(self, request: PluginRequest) -> Any:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))

    async def secret(self, request: PluginRequest) -> Any:
        await self.ctx.publish(Secret("leak"))

    async def peek(self, request: PluginRequest) -> Any:
        other = request.params.get("tenant") or "beta"
        return await self.ctx.storage.get("seen/x", tenant=other)

    async def elsewhere(self, request: PluginRequest) -> Any:
        return await self.ctx.storage_of("webhooks").get("x")

    async def fail(self, request: PluginRequest) -> Any:
        raise RuntimeError("the plugin failed")

    async def pid(self, request: PluginRequest) -> Any:
        return {"pid": os.getpid()}


class InlineRecorder(Recorder):
    """The same plugin, trusted to run in-process."""

    metadata = Metadata("inline-recorder", "1.0.0", api=API, description="records events inline")
    capabilities = Capabilities(
        subscribe=("sample.*",), publish=("sample.noted",), routes=True, storage="inline-recorder"
    )
    isolation = "inline"


class FailsToStart(Plugin):
    """Its initialize raises."""

    metadata = Metadata("fails-to-start", "1.0.0", api=API)
    isolation = "inline"

    async def initialize(self, ctx: PluginContext) -> None:
        raise RuntimeError("no configuration")


class TooNew(Plugin):
    """Written for a plugin API this platform does not implement."""

    metadata = Metadata("too-new", "1.0.0", api=">=2.0")


class Tally(Actor):
    """An actor of a process plugin, living in its child's own actor system."""

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Any) -> int:
        self.count += 1
        return self.count


class WithActors(Plugin):
    """A process plugin whose Module declares an actor; its endpoint asks it."""

    metadata = Metadata("with-actors", "1.0.0", api=API)
    capabilities = Capabilities(routes=True)
    limits = FAST

    def module(self) -> Module:
        def actors(ctx: ModuleContext) -> list[ChildSpec]:
            self.system = ctx.system
            assert isinstance(ctx.get(PluginContext), PluginContext)
            return [ChildSpec("tally", Tally)]

        return Module(
            name=self.metadata.name,
            actors=actors,
            routes=lambda: (Endpoint("POST", "/tally", self.tally, "Count", action="create"),),
        )

    async def tally(self, request: PluginRequest) -> Any:
        ref = self.system.ref("/plugin/actors/tally")
        return {"count": await ref.ask("one more"), "path": ref.path, "pid": os.getpid()}
