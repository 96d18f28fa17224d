"""Example tests for SingleFlight: sharing, errors, forget, cancellation, owner shutdown."""

from __future__ import annotations

import gc
import traceback

import pytest
import trio
import trio.testing

from triotok._exceptions import ActorStopped
from triotok.resilience import (
    FlightResult,
    SingleFlight,
    SingleFlightStatistics,
    open_singleflight,
)


class Gate:
    """A loader that blocks until released; counts starts, finishes and cancellations."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.started = 0
        self.finished = 0
        self.cancelled = 0

    async def __call__(self, value: object) -> object:
        self.started += 1
        try:
            await self.release.wait()
        except trio.Cancelled:
            self.cancelled += 1
            raise
        self.finished += 1
        if isinstance(value, Exception):
            raise value
        return value


async def test_concurrent_callers_share_one_execution() -> None:
    gate = Gate()
    results: list[FlightResult[object]] = []
    async with open_singleflight() as sf, trio.open_nursery() as callers:
        for _ in range(5):
            callers.start_soon(lambda: _append(results, sf.do_ex("k", gate, "v")))
        await trio.testing.wait_all_tasks_blocked()
        assert gate.started == 1
        assert sf.in_flight("k")
        gate.release.set()
    assert [r.value for r in results] == ["v"] * 5
    assert all(r.shared for r in results)  # Go semantics: the first caller too
    assert sf.statistics() == SingleFlightStatistics(
        in_flight=0, calls=5, executions=1, shared=4, abandoned=0
    )


async def _append(out: list[FlightResult[object]], aw: object) -> None:
    out.append(await aw)  # type: ignore[misc]  # test helper takes any awaitable


async def test_lone_caller_is_not_shared_and_nothing_is_kept() -> None:
    calls = 0

    async def load(x: int) -> int:
        nonlocal calls
        calls += 1
        await trio.lowlevel.checkpoint()
        return x * 2

    async with open_singleflight() as sf:
        assert await sf.do_ex("k", load, 21) == (42, False)
        assert await sf.do("k", load, 21) == 42
        assert calls == 2  # nothing is stored after completion
        assert sf.statistics().in_flight == 0


async def test_error_is_shared_as_the_same_object_and_map_is_emptied() -> None:
    gate = Gate()
    boom = RuntimeError("boom")
    caught: list[BaseException] = []

    async def call(sf: SingleFlight) -> None:
        try:
            await sf.do("k", gate, boom)
        except RuntimeError as exc:
            caught.append(exc)

    async with open_singleflight() as sf, trio.open_nursery() as callers:
        for _ in range(3):
            callers.start_soon(call, sf)
        await trio.testing.wait_all_tasks_blocked()
        gate.release.set()
    assert caught == [boom, boom, boom]
    assert all(exc is boom for exc in caught)
    assert not sf.in_flight("k")


async def test_traceback_does_not_grow_with_waiters() -> None:
    gate = Gate()
    depths: list[int] = []

    async def call(sf: SingleFlight) -> None:
        try:
            await sf.do("k", gate, ValueError("bad"))
        except ValueError as exc:
            depths.append(len(traceback.extract_tb(exc.__traceback__)))

    async with open_singleflight() as sf, trio.open_nursery() as callers:
        for _ in range(50):
            callers.start_soon(call, sf)
        await trio.testing.wait_all_tasks_blocked()
        gate.release.set()
    assert len(depths) == 50
    assert max(depths) == min(depths)


async def test_forget_starts_a_new_execution_while_old_one_completes() -> None:
    old, new = Gate(), Gate()
    got: dict[str, object] = {}

    async def call(name: str, sf: SingleFlight, gate: Gate) -> None:
        got[name] = await sf.do("k", gate, name)

    async with open_singleflight() as sf, trio.open_nursery() as callers:
        callers.start_soon(call, "first", sf, old)
        await trio.testing.wait_all_tasks_blocked()
        sf.forget("k")
        assert not sf.in_flight("k")
        callers.start_soon(call, "second", sf, new)
        await trio.testing.wait_all_tasks_blocked()
        assert (old.started, new.started) == (1, 1)
        new.release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert got == {"second": "second"}
        assert sf.in_flight("k") is False
        old.release.set()  # the forgotten execution still serves its waiter
    assert got == {"first": "first", "second": "second"}
    assert sf.statistics().in_flight == 0


async def test_cancelled_caller_does_not_cancel_the_others() -> None:
    gate = Gate()
    got: list[object] = []

    async def patient(sf: SingleFlight) -> None:
        got.append(await sf.do("k", gate, "v"))

    async with open_singleflight() as sf, trio.open_nursery() as callers:
        with trio.CancelScope() as impatient:
            callers.start_soon(patient, sf)
            await trio.testing.wait_all_tasks_blocked()
            # This very task joins, then gets cancelled while waiting.
            async with trio.open_nursery() as inner:
                inner.start_soon(sf.do, "k", gate, "v")
                await trio.testing.wait_all_tasks_blocked()
                impatient.cancel()
        assert impatient.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert gate.cancelled == 0
        assert sf.in_flight("k")
        gate.release.set()
    assert got == ["v"]
    assert gate.finished == 1


async def test_last_waiter_leaving_cancels_the_execution() -> None:
    gate = Gate()
    async with open_singleflight() as sf:
        async with trio.open_nursery() as callers:
            for _ in range(3):
                callers.start_soon(sf.do, "k", gate, "v")
            await trio.testing.wait_all_tasks_blocked()
            callers.cancel_scope.cancel()
        assert not sf.in_flight("k")  # unmapped at once, before the task unwinds
        await trio.testing.wait_all_tasks_blocked()
        assert gate.cancelled == 1
        stats = sf.statistics()
        assert (stats.in_flight, stats.abandoned) == (0, 1)
        # A newcomer starts afresh.
        gate.release.set()
        assert await sf.do("k", gate, "again") == "again"
        assert gate.started == 2


async def test_owner_shutdown_gives_waiters_an_error_not_a_hang() -> None:
    gate = Gate()
    errors: list[BaseException] = []

    async def waiter(sf: SingleFlight) -> None:
        try:
            await sf.do("k", gate, "v")
        except ActorStopped as exc:
            errors.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as callers, trio.open_nursery() as owner:
            sf = SingleFlight(owner, name="/app/tenants")
            callers.start_soon(waiter, sf)
            callers.start_soon(waiter, sf)
            await trio.testing.wait_all_tasks_blocked()
            owner.cancel_scope.cancel()
    assert len(errors) == 2
    assert all(isinstance(e, ActorStopped) and e.path == "/app/tenants" for e in errors)
    assert gate.cancelled == 1
    assert sf.statistics().in_flight == 0


async def test_closed_owner_nursery_raises_actor_stopped() -> None:
    async with trio.open_nursery() as owner:
        sf = SingleFlight(owner)
    with pytest.raises(ActorStopped):
        await sf.do("k", Gate(), "v")
    assert sf.statistics().in_flight == 0


async def test_open_singleflight_exit_cancels_in_flight_for_outside_waiters() -> None:
    gate = Gate()
    errors: list[BaseException] = []

    async def waiter(sf: SingleFlight) -> None:
        with pytest.raises(ActorStopped) as info:
            await sf.do("k", gate, "v")
        errors.append(info.value)

    async with trio.open_nursery() as outside, open_singleflight(name="standalone") as sf:
        assert sf.name == "standalone"
        outside.start_soon(waiter, sf)
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 1


async def test_execution_error_never_crashes_the_owner() -> None:
    async def fail() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("x")

    async with trio.open_nursery() as owner:
        sf = SingleFlight(owner)
        with pytest.raises(KeyError):
            await sf.do("k", fail)
        await trio.testing.wait_all_tasks_blocked()
        # The owner nursery is still healthy and accepts new executions.
        assert await sf.do("k", _const, 1) == 1


async def _const(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return x


async def test_distinct_keys_run_independently() -> None:
    gates = {k: Gate() for k in "abc"}
    async with open_singleflight() as sf, trio.open_nursery() as callers:
        for k, g in gates.items():
            callers.start_soon(sf.do, k, g, k)
        await trio.testing.wait_all_tasks_blocked()
        assert sf.statistics().in_flight == 3
        for g in gates.values():
            g.release.set()
    assert sf.statistics().executions == 3


async def test_finished_calls_are_released() -> None:
    class Big:
        pass

    async def load() -> Big:
        await trio.lowlevel.checkpoint()
        return Big()

    async with open_singleflight() as sf:
        value = await sf.do("k", load)
        del value
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Big)]


async def test_forget_all_detaches_every_key() -> None:
    gates = {k: Gate() for k in "ab"}
    async with open_singleflight() as sf, trio.open_nursery() as callers:
        for k, g in gates.items():
            callers.start_soon(sf.do, k, g, k)
        await trio.testing.wait_all_tasks_blocked()
        sf.forget_all()
        assert sf.statistics().in_flight == 0
        assert not sf.in_flight("a")
        for g in gates.values():
            g.release.set()
    assert all(g.finished == 1 for g in gates.values())
