"""The sans-I/O breaker machine: exact boundaries and a hypothesis state machine.

The state machine test keeps its own model of the window (the outcomes it
recorded since the last transition) and checks the machine against it after
every step, so the counts and every automatic transition are justified by an
independent computation.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from triotok.resilience import CircuitOpen
from triotok.resilience._breaker import (
    LEGAL_TRANSITIONS,
    BreakerPermit,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CallOutcome,
    _BreakerMachine,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Abort(BaseException):
    """Stands in for trio.Cancelled: a BaseException that is not an Exception."""


# ----------------------------------------------------------------------------- examples


def test_a_call_exactly_at_the_slow_duration_is_not_slow() -> None:
    m = _BreakerMachine("x", BreakerPolicy(slow_call_duration=2.0))
    m.on_success(m.acquire(10.0), 12.0)
    m.on_success(m.acquire(10.0), 12.5)
    assert m.statistics(13.0).slow_calls == 1


def test_classify_rules() -> None:
    policy = BreakerPolicy(record_exceptions=(OSError,), ignore_exceptions=(ConnectionError,))
    assert policy.classify(OSError()) is CallOutcome.FAILURE
    assert policy.classify(ConnectionResetError()) is CallOutcome.IGNORED
    assert policy.classify(ValueError()) is CallOutcome.SUCCESS
    assert policy.classify(Abort()) is CallOutcome.IGNORED
    assert policy.classify(KeyboardInterrupt()) is CallOutcome.IGNORED


def test_a_permit_settles_once() -> None:
    m = _BreakerMachine("x", BreakerPolicy())
    permit = m.acquire(0.0)
    m.release(permit)
    with pytest.raises(RuntimeError, match="settled twice"):
        m.on_success(permit, 1.0)


def test_wait_in_open_zero_half_opens_on_the_next_acquire() -> None:
    m = _BreakerMachine("x", BreakerPolicy(minimum_calls=1, wait_in_open=0))
    m.on_error(m.acquire(0.0), 0.0, ValueError())
    assert m.state is OPEN
    assert m.acquire(0.0).trial
    assert m.state is HALF_OPEN


def test_retry_after_counts_down_and_never_goes_negative() -> None:
    m = _BreakerMachine("x", BreakerPolicy(minimum_calls=1, wait_in_open=10))
    m.on_error(m.acquire(0.0), 5.0, ValueError())
    assert m.retry_after(5.0) == 10.0
    assert m.retry_after(12.0) == 3.0
    with pytest.raises(CircuitOpen) as info:
        m.acquire(14.0)
    assert info.value.retry_after == 1.0
    assert m.retry_after(15.0) == 0.0  # HALF_OPEN by now


def test_reopened_breaker_reports_the_rates_of_its_trial_calls() -> None:
    # Fewer trial calls (4) than minimum_calls (10): the rates are still known.
    policy = BreakerPolicy(minimum_calls=10, half_open_calls=4, wait_in_open=5.0)
    m = _BreakerMachine("x", policy)
    for _ in range(10):
        m.on_error(m.acquire(0.0), 0.0, ValueError())
    trials = [m.acquire(5.0) for _ in range(4)]
    m.on_success(trials[0], 5.0)
    for permit in trials[1:]:
        m.on_error(permit, 5.0, ValueError())
    stats = m.statistics(5.0)
    assert stats.state is OPEN
    assert (stats.failure_rate, stats.slow_call_rate) == (75.0, 0.0)
    assert (stats.buffered_calls, stats.failed_calls, stats.successful_calls) == (4, 3, 1)
    assert m.statistics(10.0).failure_rate == -1.0  # HALF_OPEN again, no trials yet


def test_legal_transitions_table() -> None:
    assert (CLOSED, HALF_OPEN) not in LEGAL_TRANSITIONS
    assert (OPEN, CLOSED) in LEGAL_TRANSITIONS  # reset by an operator
    assert (BreakerState.FORCED_OPEN, HALF_OPEN) not in LEGAL_TRANSITIONS
    assert (BreakerState.DISABLED, OPEN) not in LEGAL_TRANSITIONS
    # 4 automatic + 3 operator targets from 4 other states each; HALF_OPEN -> CLOSED is both.
    assert len(LEGAL_TRANSITIONS) == 4 + 3 * 4 - 1


# ----------------------------------------------------------------------------- state machine

RAISES: dict[str, BaseException | None] = {
    "ok": None,
    "failure": OSError("down"),  # recorded
    "unrecorded": ValueError("bad input"),  # not in record_exceptions: a success
    "ignored": ConnectionResetError(),  # ignore wins over record (OSError)
    "cancelled": Abort(),
}
FAILS = {"failure"}
RECORDED = {"ok", "failure", "unrecorded"}
AUTOMATIC = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


class BreakerMachineTest(RuleBasedStateMachine):
    """Random calls, clock steps and operator actions against a window model."""

    @initialize(
        window=st.integers(1, 6),
        minimum=st.integers(1, 8),
        threshold=st.sampled_from([1.0, 33.4, 50.0, 66.7, 100.0]),
        slow_threshold=st.sampled_from([25.0, 50.0, 100.0]),
        half_open=st.integers(1, 4),
        wait=st.sampled_from([0.0, 1.0, 5.0]),
    )
    def setup(
        self,
        window: int,
        minimum: int,
        threshold: float,
        slow_threshold: float,
        half_open: int,
        wait: float,
    ) -> None:
        self.policy = BreakerPolicy(
            window_size=window,
            minimum_calls=minimum,
            failure_rate_threshold=threshold,
            slow_call_duration=1.0,
            slow_call_rate_threshold=slow_threshold,
            wait_in_open=wait,
            half_open_calls=half_open,
            record_exceptions=(OSError,),
            ignore_exceptions=(ConnectionError,),
        )
        self.m = _BreakerMachine("hyp", self.policy)
        self.events: list[BreakerTransition] = []
        self.m.listeners.append(self.events.append)
        self.now = 1000.0
        # A permit is fresh while no transition (and no reset) happened since it
        # was let through: (permit, epoch when let through).
        self.epoch = 0
        self.in_flight: list[tuple[BreakerPermit, int]] = []
        self.model: list[tuple[bool, bool]] = []  # (failed, slow), oldest first
        self.rejected = 0

    # ------------------------------------------------------------------ helpers

    def _sync_model(self, before: int) -> None:
        """Apply the transitions that happened since ``before`` to the model."""
        for event in self.events[before:]:
            self.epoch += 1
            if event.to_state is not OPEN:
                self.model = []  # OPEN keeps the window that tripped it

    def _rates_trip(self) -> bool:
        n = len(self.model)
        failed = sum(f for f, _ in self.model)
        slow = sum(s for _, s in self.model)
        return (
            failed * 100.0 >= self.policy.failure_rate_threshold * n
            or slow * 100.0 >= self.policy.slow_call_rate_threshold * n
        )

    # ------------------------------------------------------------------ rules

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 1.5, 5.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def poll(self) -> None:
        before = len(self.events)
        self.m.poll(self.now)
        self._sync_model(before)

    @rule()
    def acquire(self) -> None:
        before = len(self.events)
        try:
            permit = self.m.acquire(self.now)
        except CircuitOpen as exc:
            self.rejected += 1
            rejection = exc
        else:
            assert self.m.state in (CLOSED, HALF_OPEN, BreakerState.DISABLED)
            assert permit.trial == (self.m.state is HALF_OPEN)
            self._sync_model(before)
            self.in_flight.append((permit, self.epoch))
            return
        self._sync_model(before)
        assert self.m.state in (OPEN, HALF_OPEN, BreakerState.FORCED_OPEN)
        assert rejection.state == self.m.state.value
        assert rejection.retry_after >= 0.0

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), outcome=st.sampled_from(sorted(RAISES)))
    def settle(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.in_flight) - 1), label="which")
        permit, epoch = self.in_flight.pop(index)
        state = self.m.state
        before = len(self.events)
        error = RAISES[outcome]
        if error is None:
            self.m.on_success(permit, self.now)
        else:
            self.m.on_error(permit, self.now, error)
        fresh = epoch == self.epoch
        if fresh and outcome in RECORDED and state in (CLOSED, HALF_OPEN):
            slow = self.now - permit.started_at > self.policy.slow_call_duration
            self.model.append((outcome in FAILS, slow))
            if state is CLOSED:
                self.model = self.model[-self.policy.window_size :]
            changed = self.events[before:]
            assert len(changed) <= 1
            if state is CLOSED:
                due = len(self.model) >= self.policy.effective_minimum_calls and self._rates_trip()
                assert [e.to_state for e in changed] == ([OPEN] if due else [])
            else:
                done = len(self.model) == self.policy.half_open_calls
                expected = [OPEN if self._rates_trip() else CLOSED] if done else []
                assert [e.to_state for e in changed] == expected
        else:
            assert len(self.events) == before  # nothing recorded, nothing decided
        self._sync_model(before)

    @rule(action=st.sampled_from(["force_open", "disable", "reset"]))
    def operator(self, action: str) -> None:
        before = len(self.events)
        getattr(self.m, action)(self.now)
        self._sync_model(before)
        if action == "reset":
            self.model = []
            self.epoch += 1  # even CLOSED -> CLOSED starts a clean window
        target = {"force_open": BreakerState.FORCED_OPEN, "disable": BreakerState.DISABLED}
        assert self.m.state is target.get(action, CLOSED)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def only_legal_transitions_chained(self) -> None:
        state = CLOSED
        for event in self.events:
            assert (event.from_state, event.to_state) in LEGAL_TRANSITIONS
            assert event.from_state is state
            if "operator" in event.reason:
                assert event.to_state in (BreakerState.FORCED_OPEN, BreakerState.DISABLED, CLOSED)
            else:
                assert (event.from_state, event.to_state) in AUTOMATIC
            state = event.to_state
        assert self.m.state is state

    @invariant()
    def counts_add_up(self) -> None:
        window = list(self.m._window)
        assert window == self.model
        assert self.m._failed == sum(f for f, _ in window)
        assert self.m._slow == sum(s for _, s in window)
        if self.m.state is CLOSED:
            assert len(window) <= self.policy.window_size

    @invariant()
    def half_open_permits_are_bounded(self) -> None:
        generation = self.m._generation
        trials = sum(1 for p, _ in self.in_flight if p.trial and p.generation == generation)
        assert self.m._trial_in_flight == trials
        if self.m.state is HALF_OPEN:
            assert trials + len(self.m._window) <= self.policy.half_open_calls
        else:
            assert trials == 0

    @invariant()
    def statistics_agree(self) -> None:
        # Reading at the current time may apply OPEN -> HALF_OPEN; that is a
        # legal lazy step, so keep the model in sync with it.
        before = len(self.events)
        stats = self.m.statistics(self.now)
        self._sync_model(before)
        assert stats.buffered_calls == len(self.model)
        assert stats.successful_calls + stats.failed_calls == stats.buffered_calls
        assert stats.slow_calls == sum(s for _, s in self.model)
        assert stats.not_permitted_calls == self.rejected
        assert sum(stats.transitions.values()) == len(self.events)
        for (src, dst), n in stats.transitions.items():
            assert n == sum(1 for e in self.events if (e.from_state, e.to_state) == (src, dst))
        if stats.failure_rate != -1.0:
            assert 0.0 <= stats.failure_rate <= 100.0
            assert 0.0 <= stats.slow_call_rate <= 100.0
        assert (stats.failure_rate, stats.slow_call_rate) == self._expected_rates(stats.state)
        if stats.state is OPEN:
            assert 0.0 <= self.m.retry_after(self.now) <= self.policy.wait_in_open
            # OPEN always shows the calls that decided it, with known rates:
            # after HALF_OPEN -> OPEN those are exactly the trial calls.
            assert stats.buffered_calls > 0
            assert stats.failure_rate != -1.0
            if self.events[-1].from_state is HALF_OPEN:
                assert stats.buffered_calls == self.policy.half_open_calls

    def _expected_rates(self, state: BreakerState) -> tuple[float, float]:
        """The rates statistics() must report, computed from the model alone.

        ``-1.0`` only while a CLOSED or HALF_OPEN window holds too few calls,
        and when FORCED_OPEN or DISABLED (no window).
        """
        n = len(self.model)
        needed = {
            CLOSED: self.policy.effective_minimum_calls,
            HALF_OPEN: self.policy.half_open_calls,
            OPEN: 1,
        }.get(state)
        if needed is None or n < needed:
            return (-1.0, -1.0)
        failed = sum(f for f, _ in self.model)
        slow = sum(s for _, s in self.model)
        return (failed * 100.0 / n, slow * 100.0 / n)


BreakerMachineTest.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestBreakerMachine = BreakerMachineTest.TestCase
