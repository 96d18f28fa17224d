"""Breakers and caches registered by an actor show in the tree on that actor."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from triotok import Actor, open_system
from triotok.actors import ActorCrashed
from triotok.supervision import CircuitBreaker, CircuitOpen


async def flaky() -> None:
    raise ConnectionError("remote down")


class Gateway(Actor):
    """Calls a failing remote service through a breaker it owns."""

    async def on_start(self) -> None:
        self.breaker = CircuitBreaker("payments", window_size=4, minimum_calls=2, wait_in_open=30.0)
        self.ctx.register("payments", self.breaker)

    async def receive(self, message: Any) -> Any:
        try:
            return await self.breaker.call(flaky)
        except ConnectionError:
            return "failed"
        except CircuitOpen as exc:
            return f"open, retry after {exc.retry_after:g}s"


async def test_a_registered_breaker_appears_in_the_tree(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        ref = await system.spawn(Gateway, name="gateway")
        assert await ref.ask("pay") == "failed"
        assert await ref.ask("pay") == "failed"
        assert await ref.ask("pay") == "open, retry after 30s"
        [node] = system.tree()["children"]
        breaker = node["components"]["payments"]
        assert breaker["state"] == "open"
        assert breaker["failed_calls"] == 2
        assert breaker["not_permitted_calls"] == 1


class Crashes(Gateway):
    async def receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


async def test_components_are_rebuilt_with_the_incarnation(autojump_clock: MockClock) -> None:
    async with open_system() as system:
        ref = await system.spawn(Crashes, name="gateway")
        with pytest.raises(ActorCrashed):
            await ref.ask("x")
        [node] = system.tree()["children"]
        assert node["components"]["payments"]["state"] == "closed"
