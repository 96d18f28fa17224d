"""The actor behind a module's declared :class:`~triotok.modules.Subscription`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..actors import Actor
from ..transport import Envelope

__all__ = ("SubscriberActor",)


class SubscriberActor(Actor):
    """Hands every event the bus delivers to one handler; a raise is the bus's retry signal.

    Lives in its module's subtree (``/app/modules/<name>/on-<n>``), so a
    handler that crashes it is restarted by the module's supervisor while the
    bus retries or dead-letters the event.
    """

    def __init__(self, handler: Callable[[Envelope], Awaitable[None]]) -> None:
        self._handler = handler

    async def receive(self, message: Any) -> None:
        if not isinstance(message, Envelope):
            raise TypeError(f"a subscriber takes events, not {type(message).__name__}")
        await self._handler(message)
