"""Helpers of the plugin tests: enabling plugins, waiting for events, a local webhook receiver."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from tests.http.conftest import Server
from triotok import Actor
from triotok.transport import Envelope

_NAMES = itertools.count(1)


class _Collector(Actor):
    def __init__(self, seen: list[Envelope], wanted: Callable[[Envelope], bool]) -> None:
        self.seen = seen
        self.wanted = wanted
        self.changed = trio.Event()

    async def receive(self, message: Any) -> None:
        assert isinstance(message, Envelope)
        if self.wanted(message):
            self.seen.append(message)


@dataclass
class Events:
    """Events of ``pattern`` seen by a collector subscribed on the application's bus."""

    seen: list[Envelope]
    _arrived: Callable[[], trio.Event] = field(repr=False)

    async def wait(self, count: int = 1) -> list[Envelope]:
        """Until ``count`` events arrived (bound it with ``trio.fail_after``)."""
        while len(self.seen) < count:
            await self._arrived().wait()
        return self.seen


async def collect(
    server: Server, pattern: str, wanted: Callable[[Envelope], bool] = lambda e: True
) -> Events:
    """Subscribe a collector of ``pattern`` (in its own consumer group) on ``server``'s bus."""
    seen: list[Envelope] = []
    state = {"event": trio.Event()}

    def wanted_and_signal(envelope: Envelope) -> bool:
        ok = wanted(envelope)
        if ok:
            state["event"].set()
            state["event"] = trio.Event()
        return ok

    ref = await server.app.system.spawn(
        _Collector, seen, wanted_and_signal, name=f"collector-{next(_NAMES)}"
    )
    await server.app.bus.subscribe(pattern, ref, group=ref.name)
    return Events(seen, lambda: state["event"])


async def enable(
    server: Server, name: str, *tenants: str, grants: dict[str, Any] | None = None
) -> Any:
    """Enable plugin ``name`` over HTTP (as an operator) and switch it on for ``tenants``."""
    ops = server.auth(await server.operator())
    body = {} if grants is None else {"grants": grants}
    response = await server.client.post(f"/system/plugins/{name}/enable", json=body, headers=ops)
    assert response.status_code == 200, response.text
    for tenant in tenants:
        key = await server.key(tenant, "admin")
        switched = await server.client.put(
            f"/api/tenant-plugins/{name}", json={"enabled": True}, headers=server.auth(key)
        )
        assert switched.status_code == 200, switched.text
    return response.json()


@dataclass
class Receiver:
    """A tiny webhook receiver on 127.0.0.1: records requests, answers ``statuses`` in turn."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0
    _changed: trio.Event = field(default_factory=trio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def wait(self, count: int) -> list[tuple[dict[str, str], bytes]]:
        while len(self.requests) < count:
            await self._changed.wait()
        return self.requests

    async def _handle(self, stream: trio.SocketStream) -> None:
        import h11

        conn = h11.Connection(h11.SERVER)
        headers: dict[str, str] = {}
        body = b""
        async with stream:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                    continue
                if isinstance(event, h11.Request):
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            index = len(self.requests)
            status = self.statuses[min(index, len(self.statuses) - 1)]
            self.requests.append((headers, body))
            self._changed.set()
            self._changed = trio.Event()
            reply = conn.send(
                h11.Response(
                    status_code=status, headers=[("content-length", "2"), ("connection", "close")]
                )
            )
            await stream.send_all(
                (reply or b"")
                + (conn.send(h11.Data(data=b"ok")) or b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )


@asynccontextmanager
async def receiver(statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    """Serve a :class:`Receiver` on a free port of 127.0.0.1 for the block."""
    found = Receiver(statuses or [200])
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, found._handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        found.port = listeners[0].socket.getsockname()[1]
        yield found
        nursery.cancel_scope.cancel()
