"""Rate limiter: examples, the trio helpers, and a hypothesis state machine.

The state machine checks GCRA's promise on every interval between admissions
of a key: at most ``capacity + rate * elapsed`` units.
"""

from __future__ import annotations

import copy
import math

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from triotok._exceptions import InvalidConfig
from triotok.resilience import GcraTable, RateDecision, RateLimit, RateLimited, RateLimiter
from triotok.resilience._ratelimit import REASON_TOO_COSTLY

# Float rounding allowance, in tokens (the implementation's _EPS is 1e-6).
TOLERANCE = 2e-6


def table(capacity: int = 10, rate: float = 5.0, **kwargs: int) -> GcraTable:
    return GcraTable(RateLimit(capacity, rate), **kwargs)


# ----------------------------------------------------------------------------- examples


def test_a_full_bucket_admits_its_capacity_at_once_then_denies() -> None:
    t = table(capacity=3, rate=2.0)
    remaining = [t.check("k", 100.0).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    denied = t.check("k", 100.0)
    assert denied == RateDecision(
        allowed=False,
        remaining=0,
        limit=3,
        reset_after=1.5,
        retry_after=0.5,
        reason="rate limit exceeded",
    )


def test_tokens_refill_at_the_rate() -> None:
    t = table(capacity=10, rate=5.0)
    for _ in range(10):
        assert t.check("k", 0.0).allowed
    assert not t.check("k", 0.1).allowed
    decision = t.check("k", 0.2)  # one token back after 1/5 s
    assert decision.allowed
    assert decision.remaining == 0
    decision = t.check("k", 1.2)  # five more
    assert (decision.allowed, decision.remaining) == (True, 4)


def test_remaining_is_exact_despite_float_steps() -> None:
    t = table(capacity=10, rate=10.0)
    for _ in range(3):
        t.check("k", 0.0)
    assert t.check("k", 0.0).remaining == 6  # 0.7/0.1 is 6.999... in floats


def test_a_denied_request_consumes_nothing() -> None:
    t = table(capacity=5, rate=1.0)
    assert t.check("k", 0.0, cost=4).allowed
    denied = t.check("k", 0.0, cost=3)
    assert not denied.allowed
    assert denied.remaining == 1
    assert denied.retry_after == pytest.approx(2.0)
    assert t.check("k", 0.0, cost=1).allowed


def test_a_cost_above_capacity_is_never_admitted() -> None:
    t = table(capacity=5, rate=1.0)
    decision = t.check("k", 0.0, cost=6)
    assert not decision.allowed
    assert decision.reason == REASON_TOO_COSTLY
    assert decision.retry_after == math.inf
    assert decision.remaining == 5
    assert decision.as_dict()["retry_after"] is None


@pytest.mark.parametrize("cost", [0, -1, 1.5, True])
def test_cost_below_one_or_not_an_integer_is_invalid(cost: object) -> None:
    with pytest.raises(InvalidConfig) as info:
        table().check("k", 0.0, cost=cost)  # type: ignore[arg-type]
    assert info.value.field == "cost"


@pytest.mark.parametrize(
    ("capacity", "rate", "field"),
    [
        (0, 1.0, "capacity"),
        (2.5, 1.0, "capacity"),
        (1, 0.0, "refill_per_second"),
        (1, -1.0, "refill_per_second"),
        (1, math.inf, "refill_per_second"),
        (1, math.nan, "refill_per_second"),
    ],
)
def test_rate_limit_domain(capacity: object, rate: object, field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        RateLimit(capacity, rate)  # type: ignore[arg-type]
    assert info.value.field == field


def test_max_keys_domain() -> None:
    with pytest.raises(InvalidConfig):
        table(max_keys=0)


def test_keys_are_independent() -> None:
    t = table(capacity=1, rate=1.0)
    assert t.check("a", 0.0).allowed
    assert t.check("b", 0.0).allowed
    assert not t.check("a", 0.0).allowed


def test_full_buckets_are_forgotten_losslessly() -> None:
    t = table(capacity=2, rate=1.0)
    t.check("a", 0.0)
    t.check("b", 0.5)
    assert len(t) == 2
    t.check("c", 10.0)  # a and b are full again: dropped, nothing lost
    assert len(t) == 1
    assert t.statistics().evicted == 0
    assert t.check("a", 10.0).remaining == 1


def test_max_keys_evicts_the_least_recently_used_key_which_starts_full() -> None:
    t = table(capacity=2, rate=1.0, max_keys=2)
    t.check("a", 0.0, cost=2)
    t.check("b", 0.0)
    t.check("c", 0.0)
    stats = t.statistics()
    assert (stats.keys, stats.evicted, stats.max_keys) == (2, 1, 2)
    assert t.check("a", 0.0).remaining == 1  # starts full again


def test_forget_refills_a_key() -> None:
    t = table(capacity=1, rate=1.0)
    t.check("k", 0.0)
    t.forget("k")
    assert t.check("k", 0.0).allowed


def test_statistics_count_decisions() -> None:
    t = table(capacity=1, rate=1.0)
    t.check("k", 0.0)
    t.check("k", 0.0)
    t.check("k", 0.0, cost=2)
    stats = t.statistics()
    assert (stats.allowed, stats.denied) == (1, 2)


# ----------------------------------------------------------------------------- trio helpers


async def test_hit_raises_rate_limited_with_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = RateLimiter(RateLimit(2, 4.0))
    assert limits.hit("tenant:GET /").remaining == 1
    limits.hit("tenant:GET /")
    with pytest.raises(RateLimited) as info:
        limits.hit("tenant:GET /")
    assert info.value.key == "tenant:GET /"
    assert info.value.retry_after == pytest.approx(0.25)
    assert info.value.retryable
    await trio.sleep(info.value.retry_after)
    assert limits.hit("tenant:GET /").allowed


async def test_try_hit_returns_the_denial(autojump_clock: trio.testing.MockClock) -> None:
    limits = RateLimiter(RateLimit(1, 1.0))
    assert limits.try_hit("k").allowed
    decision = limits.try_hit("k")
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(1.0)
    with pytest.raises(RateLimited, match="cost exceeds capacity"):
        limits.hit("k", cost=2)


# ----------------------------------------------------------------------------- state machine


class LimiterMachine(RuleBasedStateMachine):
    """Random checks over a few keys and clock steps."""

    @initialize(
        capacity=st.integers(1, 20),
        rate=st.sampled_from([0.1, 0.3, 1.0, 3.0, 7.0, 1000.0]),
        max_keys=st.integers(1, 4),
        start=st.sampled_from([0.0, 12345.678, 1e6]),
    )
    def setup(self, capacity: int, rate: float, max_keys: int, start: float) -> None:
        self.rate = RateLimit(capacity, rate)
        self.t = GcraTable(self.rate, max_keys=max_keys)
        self.now = start
        # Admissions per key since it was last evicted: (time, cost).
        self.log: dict[str, list[tuple[float, int]]] = {}

    @rule(dt=st.floats(0.0, 5.0, allow_nan=False))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(key=st.sampled_from("abcde"), cost=st.integers(1, 25))
    def check(self, key: str, cost: int) -> None:
        owing = {k for k, tat in self.t._tat.items() if tat > self.now}
        before = copy.deepcopy(self.t)
        decision = self.t.check(key, self.now, cost)
        for gone in owing - set(self.t._tat):
            self.log.pop(gone, None)  # evicted while owing: starts full, by design
        capacity = self.rate.capacity
        assert decision.limit == capacity
        assert 0 <= decision.remaining <= capacity
        assert 0.0 <= decision.reset_after <= self.rate.burst_window * (1 + 1e-9) + 1e-9
        if decision.allowed:
            assert decision.retry_after == 0.0
            assert decision.reason is None
            self.log.setdefault(key, []).append((self.now, cost))
        elif cost > capacity:
            assert decision.retry_after == math.inf
        else:
            # Liveness: waiting retry_after is enough (and consumed nothing meanwhile).
            assert decision.retry_after > 0.0
            when = self.now + decision.retry_after
            later = before.check(key, when + 4 * math.ulp(when), cost)
            assert later.allowed

    @invariant()
    def never_more_than_capacity_plus_rate_times_elapsed(self) -> None:
        capacity, rate = self.rate.capacity, self.rate.refill_per_second
        for admissions in self.log.values():
            # Every interval that starts at an admission and ends at a later one.
            for i in range(len(admissions)):
                start = admissions[i][0]
                total = 0
                for when, cost in admissions[i:]:
                    total += cost
                    assert total <= capacity + rate * (when - start) + TOLERANCE

    @invariant()
    def memory_is_bounded(self) -> None:
        assert len(self.t) <= self.t.max_keys


LimiterMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestLimiterMachine = LimiterMachine.TestCase


@given(
    capacity=st.integers(1, 20),
    per_second=st.floats(0.1, 50),
    steps=st.lists(st.tuples(st.sampled_from("ab"), st.floats(0, 2, allow_nan=False)), max_size=60),
)
def test_admit_is_check_without_the_decision(
    capacity: int, per_second: float, steps: list[tuple[str, float]]
) -> None:
    """The gateway's fast path takes the same tokens and answers the same headers as check()."""
    rate = RateLimit(capacity, per_second)
    fast, full = GcraTable(rate, max_keys=1), GcraTable(rate, max_keys=1)
    now = 0.0
    for key, dt in steps:
        now += dt
        reset = fast.admit(key, now)
        decision = full.check(key, now)
        assert (reset is not None) == decision.allowed
        if reset is None:
            assert fast.check(key, now) == decision  # what the gateway does on a refusal
        else:
            assert reset == decision.reset_after
            assert fast.remaining(reset) == decision.remaining
    assert fast.statistics() == full.statistics()
