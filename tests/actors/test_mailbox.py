"""Overflow policies, the control lane, batching and fairness, dead letters."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotok import Actor, open_system
from triotok.actors import (
    BATCH,
    AskTimeout,
    DeadLetterOffice,
    DeadLetterReason,
    InvalidConfig,
    Mailbox,
    MailboxFull,
    Overflow,
)

from .conftest import Recorder


async def spawn_blocked(system: Any, overflow: Overflow, log: list[Any], gate: trio.Event) -> Any:
    """A capacity-2 actor stuck on its first message, so its mailbox fills up."""
    ref = await system.spawn(Recorder, log, name="rec", mailbox=Mailbox(2, overflow))
    ref.tell(("wait", gate))
    await trio.testing.wait_all_tasks_blocked()
    ref.tell(1)
    ref.tell(2)
    return ref


def test_mailbox_spec_validation() -> None:
    assert Mailbox(overflow="drop_old").overflow is Overflow.DROP_OLD  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match="capacity: must be at least 1"):
        Mailbox(capacity=0)
    with pytest.raises(InvalidConfig, match="capacity: must be an int"):
        Mailbox(capacity=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match="overflow: unknown policy"):
        Mailbox(overflow="sometimes")  # type: ignore[arg-type]


async def test_block_tell_raises_and_send_waits_for_room(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await spawn_blocked(system, Overflow.BLOCK, log, gate)
        with pytest.raises(MailboxFull) as info:
            ref.tell(3)
        assert (info.value.path, info.value.capacity) == ("/app/rec", 2)
        sent = trio.Event()

        async def sender() -> None:
            await ref.send(3)
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert not sent.is_set()  # backpressure: no room yet
            gate.set()
        assert await ref.ask("end") == "end"
        assert log == [("wait", gate), 1, 2, 3, "end"]
        stats = ref.statistics()
        assert stats.high_water_mark == 2
        assert stats.dropped == 0


async def test_drop_new_dead_letters_the_arriving_message(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await spawn_blocked(system, Overflow.DROP_NEW, log, gate)
        ref.tell(3)
        await ref.send(4)
        with pytest.raises(MailboxFull):
            await ref.ask(5)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert log == [("wait", gate), 1, 2]
        letters = system.dead_letters.recent()
        assert [(d.message, d.reason) for d in letters] == [
            (3, DeadLetterReason.MAILBOX_FULL),
            (4, DeadLetterReason.MAILBOX_FULL),
            (5, DeadLetterReason.MAILBOX_FULL),
        ]
        assert ref.statistics().dropped == 3


async def test_drop_old_dead_letters_the_oldest_message(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await spawn_blocked(system, Overflow.DROP_OLD, log, gate)
        ref.tell(3)
        await ref.send(4)
        ref.tell(5)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask("end") == "end"
        assert log == [("wait", gate), 4, 5, "end"]
        letters = system.dead_letters.recent()
        assert [(d.message, d.reason) for d in letters] == [
            (1, DeadLetterReason.DROPPED_OLDEST),
            (2, DeadLetterReason.DROPPED_OLDEST),
            (3, DeadLetterReason.DROPPED_OLDEST),
        ]


async def test_drop_old_fails_a_dropped_asker(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec", mailbox=Mailbox(1, Overflow.DROP_OLD))
        ref.tell(("wait", gate))
        await trio.testing.wait_all_tasks_blocked()
        errors: list[BaseException] = []

        async def asker() -> None:
            with pytest.raises(MailboxFull) as info:
                await ref.ask("first")
            errors.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(asker)
            await trio.testing.wait_all_tasks_blocked()
            ref.tell("second")  # pushes the queued ask out
        assert len(errors) == 1
        gate.set()


async def test_fail_policy_raises_on_tell_and_send(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await spawn_blocked(system, Overflow.FAIL, log, gate)
        with pytest.raises(MailboxFull):
            ref.tell(3)
        with pytest.raises(MailboxFull):
            await ref.send(3)
        with pytest.raises(MailboxFull):
            await ref.ask(3)
        gate.set()


async def test_ask_waiting_for_room_times_out(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await spawn_blocked(system, Overflow.BLOCK, log, gate)
        started = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(3, timeout=1.5)
        assert trio.current_time() - started == pytest.approx(1.5)
        gate.set()


async def test_stop_uses_the_control_lane_and_does_not_wait_behind_messages(
    autojump_clock: MockClock, log: list[Any], gate: trio.Event
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Recorder, log, name="rec")
        ref.tell(("wait", gate))
        for i in range(100):
            ref.tell(i)
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.stop)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()  # the current message finishes; the 100 queued ones do not run
        assert log == [("wait", gate)]
        letters = system.dead_letters.recent()
        assert [d.message for d in letters] == list(range(100))
        assert {d.reason for d in letters} == {DeadLetterReason.STOPPED}


async def test_batches_run_without_checkpoints_but_yield_between_batches(
    autojump_clock: MockClock,
) -> None:
    ticks = 0
    seen: list[int] = []

    class Probe(Actor):
        async def receive(self, message: Any) -> None:
            seen.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with open_system() as system:
        ref = await system.spawn(Probe, name="probe", mailbox=Mailbox(10 * BATCH))
        async with trio.open_nursery() as nursery:
            for i in range(6 * BATCH):
                ref.tell(i)
            nursery.start_soon(ticker)
            await ref.ask("sync")
            nursery.cancel_scope.cancel()
    batches = [seen[i * BATCH : (i + 1) * BATCH] for i in range(6)]
    # Within a batch nothing else ran.  Between batches the actor yields; the
    # ticker runs once per scheduler round, in an order trio randomises, so
    # it has certainly run by the batch after next.
    assert all(len(set(batch)) == 1 for batch in batches)
    assert all(batches[i + 2][0] > batches[i][0] for i in range(4))


async def test_dead_letter_office_bounds_its_ring_and_rate_limits_logging(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    office = DeadLetterOffice(capacity=5, log_per_second=3)
    with caplog.at_level(logging.INFO, logger="triotok.deadletters"):
        for i in range(20):
            office.post(i, "/app/x", DeadLetterReason.STOPPED)
        await trio.sleep(1.0)
        office.post("late", "/app/x", DeadLetterReason.CRASHED, ValueError("bad"))
    stats = office.statistics()
    assert stats.total == 21
    assert stats.by_reason == {"stopped": 20, "crashed": 1}
    assert [d.message for d in office.recent()] == [16, 17, 18, 19, "late"]
    assert stats.log_suppressed == 17
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 + 2  # three letters, the summary line, the late letter
    assert "17 more dead letters were not logged" in messages[3]
    assert office.recent()[-1].as_dict()["error"] == {"type": "ValueError", "message": "bad"}
