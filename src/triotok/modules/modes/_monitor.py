"""``/app/mode``: samples the health signals and keeps the node's service mode current.

Every ``interval`` seconds it pings the store (a read through the read
breaker), writes this node's heartbeat when due or while writes are
suspect (a write through the write breaker: the probe that closes it once
the store is back), reads the relay's outbox lag, and every
``checks_interval`` seconds the dead-letter counts, the circuit breakers of
the tree (payment providers, plugins) and the modules' health checks. Then
:meth:`ModeControl.decide` turns them into the mode.

A failing probe is a signal, never a crash: the monitor must outlive the
outages it reports.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

from ...actors import Actor, UnknownMessage
from ...resilience import BreakerState, ModeSignals
from ...store import GetStatistics, StoreUnavailable
from .._module import HealthChecks
from ._control import ModeControl

__all__ = ("ModeMonitor", "Sample")

logger = logging.getLogger("triotok.modes")

_RELAY = "/app/transport/relay"
#: Consecutive failed writes at which the store counts as not writable.
_WRITE_FAILURES = 3
_BREAKER_KEYS = frozenset({"state", "failure_rate", "not_permitted_calls"})


@dataclass(frozen=True, slots=True)
class Sample:
    """Ask :class:`ModeMonitor`: sample every signal now; the reply is the decision."""


class ModeMonitor(Actor):
    """See the module docstring."""

    def __init__(
        self,
        control: ModeControl,
        *,
        interval: float = 0.5,
        checks_interval: float = 2.0,
        heartbeat_interval: float = 5.0,
        override_refresh: float = 10.0,
    ) -> None:
        self._control = control
        self._interval = interval
        self._checks_interval = checks_interval
        self._heartbeat_interval = heartbeat_interval
        self._override_refresh = override_refresh
        self._next_checks = 0.0
        self._next_heartbeat = 0.0
        self._next_override = 0.0
        self._outbox_lag = 0.0
        self._open_breakers: tuple[str, ...] = ()
        self._degraded_checks: tuple[str, ...] = ()
        self._down_checks: tuple[str, ...] = ()
        self._letters: deque[tuple[float, int]] = deque()
        self._subscription = "modes-override"

    async def on_start(self) -> None:
        ctx = self._control.ctx
        self.ctx.register("mode", ctx.mode)
        await ctx.events.unsubscribe(self._subscription)
        await ctx.events.subscribe(
            self._subscription, self._on_event, prefix="system.mode_override"
        )
        # The first sample leaves the modules' checks for later: the actors under
        # /app/modules start after this one.
        self._next_checks = trio.current_time() + self._checks_interval
        await self.sample()
        self.ctx.start_soon(self._run)

    async def on_stop(self) -> None:
        await self._control.ctx.events.unsubscribe(self._subscription)

    async def _on_event(self, envelope: Any) -> None:
        if envelope.event_type.startswith("system.mode_override"):
            await self._control.on_event(envelope)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Sample):
            return await self.sample()
        raise UnknownMessage(self.ctx.path, message, (Sample,))

    async def _run(self) -> None:
        while True:
            await trio.sleep(self._interval)
            await self.sample()

    # ------------------------------------------------------------------ one sample

    async def sample(self) -> Any:
        control = self._control
        now = trio.current_time()
        readable, writable = await self._probe_store(now)
        await self._outbox(now)
        if now >= self._next_checks:
            self._next_checks = now + self._checks_interval
            await self._slow_signals(now)
        handle = control.ctx.store
        breakers = handle.breakers
        slow = -1.0
        for breaker in (breakers.reads, breakers.writes):
            stats = breaker.statistics()
            slow = max(slow, stats.slow_call_rate)
        control.signals = ModeSignals(
            store_readable=readable,
            store_writable=writable,
            store_slow_rate=slow,
            outbox_lag=self._outbox_lag,
            dead_letters_per_minute=self._letter_rate(now),
            open_breakers=self._open_breakers,
            degraded_checks=self._degraded_checks,
            down_checks=self._down_checks,
        )
        control.retry_after = None if readable and writable else 5.0
        decision = control.decide()
        await control.publish_changes()
        return decision

    async def _probe_store(self, now: float) -> tuple[bool, bool]:
        control = self._control
        handle = control.ctx.store
        if not handle.is_open:
            return False, False
        breakers = handle.breakers
        with contextlib.suppress(StoreUnavailable):
            await handle.store.ping()
        readable = breakers.readable
        if readable and now >= self._next_override:
            self._next_override = now + self._override_refresh
            with contextlib.suppress(StoreUnavailable):
                await control.load_override()
        if now >= self._next_heartbeat or not breakers.writable:
            try:
                await control.heartbeat()
                self._next_heartbeat = now + self._heartbeat_interval
            except StoreUnavailable:
                pass
        failures = handle.store.statistics().consecutive_write_failures if handle.is_open else 0
        writable = breakers.writable and failures < _WRITE_FAILURES
        return breakers.readable, writable

    async def _outbox(self, now: float) -> None:
        system = self._control.ctx.system
        try:
            relay: Any = system.ref(_RELAY)
            with trio.move_on_after(self._interval):
                stats = await relay.ask(GetStatistics(), timeout=self._interval)
                self._outbox_lag = float(stats.lag_seconds)
        except Exception:  # no relay (a test tree) or one restarting: keep the last figure
            return

    async def _slow_signals(self, now: float) -> None:
        ctx = self._control.ctx
        total = ctx.system.dead_letters.statistics().total
        try:
            with trio.move_on_after(self._interval):
                total += await ctx.bus.dead_letters.count()
        except Exception:
            logger.debug("counting the bus's dead letters failed", exc_info=True)
        self._letters.append((now, total))
        while self._letters and now - self._letters[0][0] > 60.0:
            self._letters.popleft()
        self._open_breakers = self._breakers()
        try:
            checks = ctx.get(HealthChecks)
        except LookupError:
            return
        _, results = await checks.run(ctx)
        self._degraded_checks = tuple(
            n for n, r in results.items() if r["status"] == "degraded" and n != "modes"
        )
        self._down_checks = tuple(
            n for n, r in results.items() if r["status"] == "down" and n != "modes"
        )

    def _letter_rate(self, now: float) -> float:
        if len(self._letters) < 2:
            return 0.0
        (first_at, first), (last_at, last) = self._letters[0], self._letters[-1]
        span = max(last_at - first_at, self._checks_interval)
        return max(0, last - first) * 60.0 / span

    def _breakers(self) -> tuple[str, ...]:
        """Breakers in the tree (not the store's: it has signals of its own) that are not closed."""
        try:
            tree = self._control.ctx.system.tree(depth=3)
        except Exception:
            return ()
        found: list[str] = []
        stack = [tree]
        while stack:
            node = stack.pop()
            stack.extend(node.get("children", ()))
            if node.get("path") == "/app/store":
                continue
            for name, stats in (node.get("components") or {}).items():
                if (
                    isinstance(stats, dict)
                    and stats.keys() >= _BREAKER_KEYS
                    and stats["state"] != BreakerState.CLOSED.value
                    and stats["state"] != BreakerState.DISABLED.value
                ):
                    found.append(f"{node['path']}:{name}")
        return tuple(sorted(found))
