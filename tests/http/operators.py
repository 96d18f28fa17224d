"""Shared by the operator-tool tests: a tree with a crashed actor and an open breaker."""

from __future__ import annotations

import trio.testing

from tests.http.conftest import Server
from triotok import Actor
from triotok.supervision import CircuitBreaker

#: The crash message: markup, so the page must show it as text, never run it.
CRASH = "<img src=x onerror=\"document.title='pwned'\"> bad order"


class Crasher(Actor):
    """Fails on every message (so it has restarts and a last error)."""

    async def receive(self, message: object) -> None:
        raise ValueError(CRASH)


class Payments(Actor):
    """Holds an open circuit breaker, shown as a component of the node."""

    async def on_start(self) -> None:
        breaker = CircuitBreaker("gateway")
        breaker.force_open()
        self.ctx.register("gateway", breaker)

    async def receive(self, message: object) -> None:
        return None


async def populate(server: Server) -> None:
    """Add ``/app/payments`` (open breaker) and ``/app/crasher`` (crashed once)."""
    system = server.app.system
    await system.spawn(Payments, name="payments")
    crasher = await system.spawn(Crasher, name="crasher")
    crasher.tell("poison")
    await trio.testing.wait_all_tasks_blocked()
