"""The relay's timers on a MockClock: polls, retry deadlines, outage backoff, pruning.

Real stores run statements in threads (SQLite) or on asyncio (PostgreSQL),
and while they do, an autojump clock leaps to the next deadline, so exact
virtual times cannot be asserted against them. These tests drive the relay
against ``ClockOutbox``, an in-memory outbox on the ``Store`` seam that does
no I/O and measures "now" on the trio clock, so every timer fires at an exact
virtual time. Delivery semantics are covered on the real backends in
``test_relay.py``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from triotok import open_system
from triotok.store import OutboxRelay, OutboxRow, StoreUnavailable, Wakeups
from triotok.store._wakeups import WakeupHub
from triotok.supervision import Backoff
from triotok.transport import Envelope, encode

from .test_relay import Recorder, envelope


class ClockOutbox:
    """Just enough of ``Store`` for a relay; due times are trio times."""

    backend = "sqlite"

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.down = False
        self.claims: list[float] = []
        self.prunes: list[float] = []
        self._hub = WakeupHub(always_listening=True)

    def add(self, env: Envelope, *, notify: bool = True) -> None:
        row_id = len(self.rows) + 1
        self.rows[row_id] = {"env": env, "due": trio.current_time(), "attempts": 0, "done": False}
        if notify:
            self._hub.notify("triotok_outbox")

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("down for the test")

    async def claim_outbox(self, node_id: str, limit: int, lease_seconds: float) -> list[OutboxRow]:
        await trio.lowlevel.checkpoint()
        self._check()
        now = trio.current_time()
        self.claims.append(now)
        picked = []
        for row_id, row in self.rows.items():
            if not row["done"] and row["due"] <= now and len(picked) < limit:
                row["attempts"] += 1
                row["due"] = now + lease_seconds
                picked.append(self._outbox_row(row_id, row, node_id))
        return picked

    def _outbox_row(self, row_id: int, row: dict[str, Any], node_id: str) -> OutboxRow:
        env: Envelope = row["env"]
        created = datetime.now(UTC)
        return OutboxRow(
            row_id, str(env.id), env.event_type, env.tenant_id, encode(env), created, created,
            row["attempts"], None, node_id, None, None,
        )  # fmt: skip

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        await trio.lowlevel.checkpoint()
        self._check()
        for row_id in ids:
            self.rows[row_id]["done"] = True
        return len(ids)

    async def mark_failed(self, id: int, error: str, retry_at: datetime) -> None:
        await trio.lowlevel.checkpoint()
        self._check()
        # The relay computed retry_at from the wall clock; keep the delay, on the trio clock.
        delay = max(0.0, (retry_at - datetime.now(UTC)).total_seconds())
        self.rows[id]["due"] = trio.current_time() + round(delay, 2)

    async def prune_delivered(self, older_than: datetime | timedelta) -> int:
        await trio.lowlevel.checkpoint()
        self._check()
        self.prunes.append(trio.current_time())
        return 0

    async def fetchval(self, sql: str, *params: Any) -> Any:
        await trio.lowlevel.checkpoint()
        self._check()
        return None  # no undelivered row: lag 0

    @asynccontextmanager
    async def listen(
        self, channel: str = "triotok_outbox", *, poll_interval: float, fallback_interval: float
    ) -> AsyncIterator[Wakeups]:
        wakeups = self._hub.subscribe(channel, poll_interval, fallback_interval)
        try:
            yield wakeups
        finally:
            self._hub.unsubscribe(wakeups)


@pytest.fixture
def outbox() -> ClockOutbox:
    return ClockOutbox()


async def spawn(system: Any, outbox: ClockOutbox, sink: Recorder, **options: Any) -> OutboxRelay:
    options = {"retention": None, **options}
    instances: list[OutboxRelay] = []

    def factory() -> OutboxRelay:
        relay = OutboxRelay(outbox, sink, node_id="clock", **options)  # type: ignore[arg-type]  # a Store subset
        instances.append(relay)
        return relay

    await system.spawn(factory, name="relay")
    return instances[-1]


async def test_commits_without_a_wakeup_are_found_by_the_poll(
    outbox: ClockOutbox, autojump_clock: MockClock
) -> None:
    sink = Recorder()
    async with open_system() as system:
        relay = await spawn(system, outbox, sink, poll_interval=30, fallback_interval=1)
        await relay.drain()
        start = trio.current_time()
        outbox.add(envelope(1), notify=False)  # e.g. another SQLite process
        await sink.wait_for(1)
        assert trio.current_time() - start == pytest.approx(30)
        assert relay.statistics().last_wake_reason == "poll"
        outbox.add(envelope(2))  # a wake-up: no waiting
        await sink.wait_for(2)
        assert trio.current_time() - start == pytest.approx(30)
        assert relay.statistics().last_wake_reason == "notify"


async def test_a_failed_row_is_retried_at_its_backoff_deadline(
    outbox: ClockOutbox, autojump_clock: MockClock
) -> None:
    sink = Recorder()
    failures = iter([ConnectionError("1"), ConnectionError("2")])
    sink.fail = lambda env: next(failures, None)
    async with open_system() as system:
        relay = await spawn(
            system,
            outbox,
            sink,
            poll_interval=1000,
            backoff=Backoff(min=10, max=100, jitter=0),
        )
        start = trio.current_time()
        outbox.add(envelope(1))
        await sink.wait_for(1)
        # Attempt 1 fails at 0, attempt 2 at +10, attempt 3 succeeds at +10+20.
        assert trio.current_time() - start == pytest.approx(30)
        assert relay.statistics().failed == 2
        assert relay.statistics().last_wake_reason == "timer"


async def test_an_outage_backs_off_and_the_relay_resumes(
    outbox: ClockOutbox, autojump_clock: MockClock
) -> None:
    sink = Recorder()
    async with open_system() as system:
        relay = await spawn(
            system,
            outbox,
            sink,
            poll_interval=1000,
            unavailable_backoff=Backoff(min=1, max=4, jitter=0, reset_after=1000),
        )
        await relay.drain()
        outbox.down = True
        start = trio.current_time()
        outbox.add(envelope(1))
        await trio.sleep(12)  # virtual time passing (autojump), for the backoff to run
        stats = relay.statistics()
        # Tries at 0, 1, 3, 7, 11 (delays 1, 2, 4, 4): five errors so far.
        assert stats.store_errors == 5
        assert stats.available is False
        assert stats.last_error == "StoreUnavailable: down for the test"
        outbox.down = False
        await sink.wait_for(1)
        assert trio.current_time() - start == pytest.approx(15)
        assert relay.statistics().available is True
        [node] = system.tree()["children"]
        assert node["restarts"] == 0


async def test_delivered_rows_are_pruned_every_prune_interval(
    outbox: ClockOutbox, autojump_clock: MockClock
) -> None:
    sink = Recorder()
    async with open_system() as system:
        start = trio.current_time()
        relay = await spawn(
            system,
            outbox,
            sink,
            poll_interval=1000,
            retention=timedelta(hours=1),
            prune_interval=60,
        )
        await trio.sleep(150)
        assert [t - start for t in outbox.prunes] == pytest.approx([0, 60, 120])
        assert relay.statistics().last_wake_reason == "timer"


def test_partial_options_make_a_child_spec_factory() -> None:
    factory = functools.partial(OutboxRelay, poll_interval=2)
    relay = factory(ClockOutbox(), Recorder())
    assert relay.poll_interval == 2
