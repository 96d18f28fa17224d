"""In-process fan-out of "something new in the outbox" signals.

Wake-ups are hints, never data: they coalesce (one pending wake-up per
subscriber) and may be lost, so every waiter also polls. A subscriber's
``wait()`` returns after a wake-up, or after ``poll_interval`` while the
backend's listener is healthy, or after the shorter ``fallback_interval``
while it is not (PostgreSQL listener connection lost), so a relay keeps
making progress without notifications.
"""

from __future__ import annotations

import contextlib
import re

import trio

from .._exceptions import InvalidConfig
from .._util import seconds

__all__ = ("WakeupHub", "Wakeups", "check_channel")

_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_channel(channel: str) -> str:
    """Channel names are plain lower-case identifiers (valid unquoted in PostgreSQL)."""
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise InvalidConfig("channel", f"{channel!r} is not a lower-case identifier")
    return channel


class Wakeups:
    """A subscription to one channel, from ``async with store.listen(channel) as wakeups``.

    Typical relay loop::

        async with store.listen() as wakeups:
            while True:
                rows = await store.claim_outbox(node_id, limit=100)
                ...
                if not rows:
                    await wakeups.wait()
    """

    def __init__(
        self, hub: WakeupHub, channel: str, poll_interval: float, fallback_interval: float
    ) -> None:
        self.channel = channel
        self.poll_interval = seconds("poll_interval", poll_interval, allow_zero=False)
        self.fallback_interval = seconds("fallback_interval", fallback_interval, allow_zero=False)
        self._hub = hub
        # Capacity 1: wake-ups that arrive while one is pending coalesce.
        self._send, self._receive = trio.open_memory_channel[None](1)

    @property
    def listening(self) -> bool:
        """Whether notifications currently arrive (False: polling fallback)."""
        return self._hub.is_listening(self.channel)

    async def wait(self) -> bool:
        """Wait for a wake-up; ``True`` if woken, ``False`` if the poll interval ran out."""
        interval = self.poll_interval if self.listening else self.fallback_interval
        with trio.move_on_after(interval):
            await self._receive.receive()
            return True
        return False

    def wait_nowait(self) -> bool:
        """Consume a pending wake-up without waiting; ``False`` if none was pending."""
        try:
            self._receive.receive_nowait()
        except trio.WouldBlock:
            return False
        return True

    def wake_nowait(self) -> None:
        """Deliver a wake-up (coalesced with one already pending)."""
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(None)

    def _close(self) -> None:
        self._send.close()
        self._receive.close()


class WakeupHub:
    """Subscribers per channel, and whether each channel's listener is healthy."""

    def __init__(self, *, always_listening: bool = False) -> None:
        self._subscribers: dict[str, set[Wakeups]] = {}
        self._listening: set[str] = set()
        # SQLite has no listener to lose: in-process commits wake directly.
        self._always_listening = always_listening

    def subscribe(self, channel: str, poll_interval: float, fallback_interval: float) -> Wakeups:
        """Add a subscriber to ``channel``."""
        wakeups = Wakeups(self, check_channel(channel), poll_interval, fallback_interval)
        self._subscribers.setdefault(channel, set()).add(wakeups)
        return wakeups

    def unsubscribe(self, wakeups: Wakeups) -> None:
        """Remove a subscriber and close its channel."""
        subscribers = self._subscribers.get(wakeups.channel)
        if subscribers is not None:
            subscribers.discard(wakeups)
            if not subscribers:
                del self._subscribers[wakeups.channel]
        wakeups._close()

    def notify(self, channel: str) -> None:
        """Wake every subscriber of ``channel`` (synchronous, never blocks)."""
        for wakeups in tuple(self._subscribers.get(channel, ())):
            wakeups.wake_nowait()

    def set_listening(self, channel: str, listening: bool) -> None:
        """Record the health of ``channel``'s listener."""
        if listening:
            self._listening.add(channel)
        else:
            self._listening.discard(channel)

    def is_listening(self, channel: str) -> bool:
        """Whether ``channel``'s notifications currently arrive."""
        return self._always_listening or channel in self._listening

    @property
    def subscriber_count(self) -> int:
        """Subscribers over all channels."""
        return sum(len(s) for s in self._subscribers.values())
