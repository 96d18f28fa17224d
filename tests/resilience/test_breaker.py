"""CircuitBreaker: one example per semantic rule, driven by trio's mock clock."""

from __future__ import annotations

import contextlib
import json
import logging
import math

import pytest
import trio
import trio.testing

from triotok._exceptions import InvalidConfig
from triotok.resilience import BreakerState, BreakerTransition, CircuitBreaker, CircuitOpen

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Boom(Exception):
    pass


async def ok(value: int = 1) -> int:
    return value


async def fail() -> None:
    raise Boom


async def take(seconds: float, error: BaseException | None = None) -> None:
    await trio.sleep(seconds)
    if error is not None:
        raise error


async def run(breaker: CircuitBreaker, outcomes: str) -> None:
    """Drive calls: 's' success, 'f' failure (Boom)."""
    for outcome in outcomes:
        if outcome == "s":
            await breaker.call(ok)
        else:
            with pytest.raises(Boom):
                await breaker.call(fail)


def breaker(**kwargs: object) -> CircuitBreaker:
    options: dict[str, object] = {"window_size": 10, "minimum_calls": 4, "half_open_calls": 2}
    options.update(kwargs)
    return CircuitBreaker("svc", **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- closed


async def test_call_passes_arguments_and_returns_the_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert await breaker().call(ok, 7) == 7


async def test_no_rate_and_no_opening_before_minimum_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=5)
    await run(b, "ffff")
    stats = b.statistics()
    assert b.state is CLOSED
    assert stats.failure_rate == -1.0
    assert stats.slow_call_rate == -1.0
    assert stats.buffered_calls == stats.failed_calls == 4
    await run(b, "f")
    assert b.state is OPEN


async def test_threshold_is_inclusive(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(failure_rate_threshold=50.0)
    await run(b, "ssf")
    assert b.state is CLOSED
    await run(b, "f")  # 2 of 4 = 50% >= 50%
    assert b.state is OPEN
    assert b.statistics().failure_rate == 50.0


async def test_rate_below_threshold_stays_closed(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(failure_rate_threshold=50.0)
    await run(b, "sssf")
    stats = b.statistics()
    assert b.state is CLOSED
    assert stats.failure_rate == 25.0
    assert stats.successful_calls == 3


async def test_window_slides_and_forgets_old_calls(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(window_size=4, minimum_calls=4, failure_rate_threshold=75.0)
    await run(b, "fffs")  # 75% once the window holds minimum_calls
    assert b.state is OPEN
    b.reset()
    await run(b, "ffss" + "ss")  # the two failures slid out: s s s s
    stats = b.statistics()
    assert b.state is CLOSED
    assert (stats.buffered_calls, stats.failed_calls) == (4, 0)
    await run(b, "fff")  # window s f f f = 75%
    assert b.state is OPEN


async def test_minimum_calls_is_capped_at_window_size(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(window_size=3, minimum_calls=10)
    await run(b, "ff")
    assert b.statistics().failure_rate == -1.0
    await run(b, "f")
    assert b.state is OPEN


# ----------------------------------------------------------------------------- slow calls


async def test_slow_successful_calls_open_the_breaker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=2, slow_call_duration=1.0, slow_call_rate_threshold=50.0)
    await b.call(take, 0.5)
    await b.call(take, 2.0)
    assert b.state is OPEN
    stats = b.statistics()
    assert (stats.slow_calls, stats.failed_calls, stats.slow_call_rate) == (1, 0, 50.0)


async def test_slow_means_longer_than_the_slow_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The exact boundary (== is not slow) is pinned in the sans-I/O tests; a
    # float clock cannot promise an exact difference.
    b = breaker(minimum_calls=10, slow_call_duration=1.0)
    await b.call(take, 0.99)
    assert b.statistics().slow_calls == 0
    await b.call(take, 1.01)
    assert b.statistics().slow_calls == 1


async def test_a_slow_failure_counts_as_failure_and_as_slow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=10, slow_call_duration=1.0)
    with pytest.raises(Boom):
        await b.call(take, 3.0, Boom())
    stats = b.statistics()
    assert (stats.failed_calls, stats.slow_calls, stats.successful_calls) == (1, 1, 0)


# ----------------------------------------------------------------------------- open


async def test_open_rejects_without_running_and_tells_when_to_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(wait_in_open=30.0)
    await run(b, "ffff")
    ran = []

    async def probe() -> None:
        ran.append(1)

    await trio.sleep(10)
    with pytest.raises(CircuitOpen) as info:
        await b.call(probe)
    assert ran == []
    assert info.value.name == "svc"
    assert info.value.state == "open"
    assert info.value.retry_after == pytest.approx(20.0)
    assert info.value.retryable
    assert b.statistics().not_permitted_calls == 1
    # OPEN keeps the window that tripped it, so the operator sees why.
    assert b.statistics().failure_rate == 100.0


async def test_open_turns_half_open_lazily_after_the_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[BreakerTransition] = []
    b = breaker(wait_in_open=30.0, on_transition=events.append)
    await run(b, "ffff")
    opened_at = trio.current_time()
    await trio.sleep(29.5)
    assert b.state is OPEN
    await trio.sleep(0.5)
    assert b.state is HALF_OPEN
    assert [(e.from_state, e.to_state) for e in events] == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]
    assert events[1].at == opened_at + 30.0


# ----------------------------------------------------------------------------- half-open


async def open_then_wait(b: CircuitBreaker) -> None:
    await run(b, "ffff")
    await trio.sleep(b.policy.wait_in_open)
    assert b.state is HALF_OPEN


async def start_trials(
    nursery: trio.Nursery, b: CircuitBreaker, n: int, release: trio.Event, error: bool
) -> None:
    async def trial() -> None:
        await release.wait()
        if error:
            raise Boom

    async def one() -> None:
        with contextlib.suppress(Boom):
            await b.call(trial)

    for _ in range(n):
        nursery.start_soon(one)
    await trio.testing.wait_all_tasks_blocked()


@pytest.mark.parametrize(("error", "after"), [(False, CLOSED), (True, OPEN)])
async def test_half_open_admits_exactly_its_trial_calls(
    error: bool, after: BreakerState, autojump_clock: trio.testing.MockClock
) -> None:
    b = breaker(half_open_calls=2)
    await open_then_wait(b)
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_trials(nursery, b, 2, release, error)
        with pytest.raises(CircuitOpen) as info:
            await b.call(ok)
        assert info.value.state == "half_open"
        assert info.value.retry_after == 0.0
        assert b.state is HALF_OPEN
        release.set()
    assert b.state is after
    assert b.statistics().buffered_calls == (0 if after is CLOSED else 2)


async def test_half_open_decides_on_slow_trial_calls_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(half_open_calls=2, slow_call_duration=1.0, slow_call_rate_threshold=50.0)
    await open_then_wait(b)
    await b.call(take, 0.1)
    assert b.state is HALF_OPEN
    await b.call(take, 5.0)
    assert b.state is OPEN


async def test_reopening_reports_the_rates_of_the_trial_calls_that_decided_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 10 point 5 (resilience4j): 3 failed of 4 trial calls reopen the
    # breaker and statistics() says 75.0, not -1.0, although 4 < minimum_calls.
    b = breaker(window_size=20, minimum_calls=10, half_open_calls=4, slow_call_duration=1.0)
    await run(b, "ffffffffff")
    assert b.state is OPEN
    await trio.sleep(b.policy.wait_in_open)
    await b.call(take, 2.0)  # the one success is slow
    await run(b, "fff")
    stats = b.statistics()
    assert stats.state is OPEN
    assert stats.failure_rate == 75.0
    assert stats.slow_call_rate == 25.0
    assert (stats.buffered_calls, stats.failed_calls, stats.slow_calls) == (4, 3, 1)
    assert stats.successful_calls == 1
    assert stats.as_dict()["failure_rate"] == 75.0


async def test_opening_from_closed_reports_the_rates_of_the_window_that_tripped_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=4)
    await run(b, "sfff")
    stats = b.statistics()
    assert stats.state is OPEN
    assert (stats.failure_rate, stats.slow_call_rate) == (75.0, 0.0)


async def test_rates_are_unknown_once_the_window_is_cleared(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(half_open_calls=4)
    await open_then_wait(b)
    await run(b, "fff")  # 3 of 4 trials: not decided yet
    assert b.statistics().failure_rate == -1.0
    b.force_open()
    assert (b.statistics().failure_rate, b.statistics().slow_call_rate) == (-1.0, -1.0)
    b.reset()
    assert b.statistics().failure_rate == -1.0


async def test_an_ignored_exception_frees_its_half_open_permit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(half_open_calls=1, ignore_exceptions=(LookupError,))
    await open_then_wait(b)
    with pytest.raises(KeyError):
        await b.call(take, 0, KeyError("x"))
    assert b.state is HALF_OPEN
    assert b.statistics().buffered_calls == 0
    await b.call(ok)  # the permit is free again
    assert b.state is CLOSED


async def test_cancellation_frees_its_half_open_permit_and_is_not_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(half_open_calls=1)
    await open_then_wait(b)
    with trio.move_on_after(1):
        await b.call(trio.sleep_forever)
    stats = b.statistics()
    assert (stats.state, stats.buffered_calls, stats.failed_calls) == (HALF_OPEN, 0, 0)
    await b.call(ok)
    assert b.state is CLOSED


async def test_cancellation_is_not_recorded_when_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=1)
    with trio.move_on_after(1):
        async with b:
            await trio.sleep_forever()
    assert b.state is CLOSED
    assert b.statistics().buffered_calls == 0


async def test_a_call_let_through_before_a_transition_is_not_recorded_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=2, half_open_calls=1, wait_in_open=1.0)
    release = trio.Event()

    async def straggler() -> None:
        await release.wait()
        raise Boom

    async with trio.open_nursery() as nursery:

        async def late() -> None:
            with pytest.raises(Boom):
                await b.call(straggler)

        nursery.start_soon(late)
        await trio.testing.wait_all_tasks_blocked()
        await run(b, "ff")
        await trio.sleep(1.0)
        assert b.state is HALF_OPEN
        release.set()
    # The CLOSED-era failure did not use up or decide the single trial.
    assert b.state is HALF_OPEN
    assert b.statistics().buffered_calls == 0


# ----------------------------------------------------------------------------- exception filters


async def test_only_record_exceptions_are_failures_others_are_successes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(record_exceptions=(OSError,), minimum_calls=10)
    with pytest.raises(ValueError, match="not recorded"):
        await b.call(take, 0, ValueError("not recorded"))
    with pytest.raises(OSError, match="down"):
        await b.call(take, 0, OSError("down"))
    stats = b.statistics()
    assert (stats.buffered_calls, stats.failed_calls, stats.successful_calls) == (2, 1, 1)


async def test_ignore_wins_over_record(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(record_exceptions=(OSError,), ignore_exceptions=(ConnectionError,))
    with pytest.raises(ConnectionResetError):
        await b.call(take, 0, ConnectionResetError())
    assert b.statistics().buffered_calls == 0


# ----------------------------------------------------------------------------- operator


async def test_forced_open_rejects_until_reset_and_never_half_opens(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(wait_in_open=5.0)
    b.force_open()
    with pytest.raises(CircuitOpen) as info:
        await b.call(ok)
    assert info.value.state == "forced_open"
    assert info.value.retry_after == 5.0
    await trio.sleep(100)
    assert b.state is BreakerState.FORCED_OPEN
    b.reset()
    assert b.state is CLOSED
    assert await b.call(ok) == 1


async def test_disabled_lets_everything_through_and_records_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=1)
    b.disable()
    await run(b, "ffffffff")
    stats = b.statistics()
    assert (stats.state, stats.buffered_calls) == (BreakerState.DISABLED, 0)
    b.reset()
    await run(b, "f")
    assert b.state is OPEN


async def test_reset_clears_the_window(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(minimum_calls=4)
    await run(b, "fff")
    b.reset()
    await run(b, "f")
    assert b.state is CLOSED
    assert b.statistics().buffered_calls == 1


# ----------------------------------------------------------------------------- events, stats


async def test_transitions_are_emitted_to_subscribers_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[BreakerTransition] = []
    other: list[BreakerTransition] = []
    b = breaker(half_open_calls=1, wait_in_open=1.0, on_transition=seen.append)
    unsubscribe = b.subscribe(other.append)
    await run(b, "ffff")
    await trio.sleep(1.0)
    await run(b, "f")  # HALF_OPEN -> OPEN
    unsubscribe()
    b.force_open()
    b.disable()
    b.reset()
    pairs = [(e.from_state.value, e.to_state.value) for e in seen]
    assert pairs == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "forced_open"),
        ("forced_open", "disabled"),
        ("disabled", "closed"),
    ]
    assert len(other) == 3
    assert all(e.name == "svc" and e.reason for e in seen)
    assert "failure rate 100.0% >= 50%" in seen[0].reason
    transitions = b.statistics().as_dict()["transitions"]
    assert transitions == {
        "closed->open": 1,
        "open->half_open": 1,
        "half_open->open": 1,
        "open->forced_open": 1,
        "forced_open->disabled": 1,
        "disabled->closed": 1,
    }


async def test_a_failing_listener_is_logged_and_does_not_break_the_call(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    def bad(event: BreakerTransition) -> None:
        raise RuntimeError("listener bug")

    b = breaker(on_transition=bad)
    with caplog.at_level(logging.ERROR, logger="triotok.resilience.breaker"):
        await run(b, "ffff")
    assert b.state is OPEN
    assert "transition listener failed" in caplog.text


async def test_statistics_as_dict_is_json_ready(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker()
    await run(b, "sf")
    data = b.statistics().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["state"] == "closed"
    assert data["failure_rate"] == -1.0
    assert (data["buffered_calls"], data["failed_calls"], data["successful_calls"]) == (2, 1, 1)


# ----------------------------------------------------------------------------- async with


async def test_async_with_records_success_and_failure_and_reraises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=10)
    async with b:
        pass
    with pytest.raises(Boom):
        async with b:
            raise Boom
    stats = b.statistics()
    assert (stats.buffered_calls, stats.failed_calls) == (2, 1)


async def test_async_with_measures_slowness_with_the_trio_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=10, slow_call_duration=2.0)
    async with b:
        await trio.sleep(3)
    assert b.statistics().slow_calls == 1


async def test_async_with_keeps_permits_per_task_and_nests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker(minimum_calls=10, slow_call_duration=1.5)

    async def worker(delay: float) -> None:
        async with b:
            await trio.sleep(delay)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker, 1.0)
        nursery.start_soon(worker, 2.0)
    async with b:
        async with b:
            await trio.sleep(1.0)
        await trio.sleep(1.0)
    stats = b.statistics()
    # Slow ones: the 2.0s worker and the outer block (2.0s), not the inner (1.0s).
    assert (stats.buffered_calls, stats.slow_calls) == (4, 2)
    assert b._held == {}


async def test_open_breaker_rejects_async_with(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker()
    b.force_open()
    with pytest.raises(CircuitOpen):
        async with b:
            pytest.fail("must not run")  # pragma: no cover


async def test_repr_names_breaker_and_state(autojump_clock: trio.testing.MockClock) -> None:
    assert repr(breaker()) == "<CircuitBreaker 'svc' closed>"


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_size", 0),
        ("window_size", 1.5),
        ("minimum_calls", 0),
        ("half_open_calls", 0),
        ("half_open_calls", True),
        ("failure_rate_threshold", 0),
        ("failure_rate_threshold", 100.5),
        ("failure_rate_threshold", math.nan),
        ("slow_call_rate_threshold", 0.0),
        ("slow_call_rate_threshold", -5),
        ("slow_call_duration", -1.0),
        ("slow_call_duration", math.nan),
        ("wait_in_open", -0.001),
        ("record_exceptions", [ValueError]),
        ("ignore_exceptions", (int,)),
    ],
)
def test_out_of_domain_settings_raise_invalid_config(field: str, value: object) -> None:
    with pytest.raises(InvalidConfig) as info:
        CircuitBreaker("svc", **{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_boundary_settings_are_accepted() -> None:
    b = CircuitBreaker(
        "svc",
        window_size=1,
        minimum_calls=1,
        half_open_calls=1,
        failure_rate_threshold=100,
        slow_call_rate_threshold=0.001,
        slow_call_duration=0,
        wait_in_open=0,
    )
    assert b.policy.effective_minimum_calls == 1
