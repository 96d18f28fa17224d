"""Small actors shared by the core tests."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from triotok import Actor


class Recorder(Actor):
    """Records every message in ``log`` (shared across incarnations); replies with it.

    ``"boom"`` raises; ``("wait", event)`` blocks until the event is set.
    """

    def __init__(self, log: list[Any] | None = None, events: list[str] | None = None) -> None:
        self.log = log if log is not None else []
        self.events = events if events is not None else []

    async def on_start(self) -> None:
        self.events.append(f"start {self.ctx.path}")

    async def on_stop(self) -> None:
        self.events.append(f"stop {self.ctx.path}")

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if isinstance(message, tuple) and message[0] == "wait":
            await message[1].wait()
        self.log.append(message)
        return message


@pytest.fixture
def log() -> list[Any]:
    return []


@pytest.fixture
def gate() -> trio.Event:
    return trio.Event()
