"""The relay's sans-I/O retry policy: delays per attempt, dead-letter decisions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok._exceptions import InvalidConfig, PermanentError, TransientError
from triotok.store import OutboxRetry, RetryDecision
from triotok.supervision import Backoff


def test_delays_double_from_min_up_to_max() -> None:
    policy = OutboxRetry(Backoff(min=1, max=10, jitter=0), max_attempts=10)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.delay(0) == 1  # a row never claimed counts as the first attempt
    assert policy.delay(10_000) == 10  # no overflow


def test_decisions() -> None:
    policy = OutboxRetry(Backoff(min=1, max=10, jitter=0), max_attempts=3)
    assert policy.decide(1, TransientError("x")) == RetryDecision(1.0)
    assert policy.decide(2, RuntimeError("x")) == RetryDecision(2.0)
    assert policy.decide(3, RuntimeError("x")) == RetryDecision(0.0, "max_attempts")
    assert policy.decide(1, PermanentError("x")) == RetryDecision(0.0, "permanent")


def test_validation() -> None:
    with pytest.raises(InvalidConfig, match="max_attempts"):
        OutboxRetry(Backoff(), max_attempts=0)
    with pytest.raises(InvalidConfig, match="max_attempts"):
        OutboxRetry(Backoff(), max_attempts=True)
    with pytest.raises(InvalidConfig, match="backoff"):
        OutboxRetry((1, 2), max_attempts=1)  # type: ignore[arg-type]  # checked at run time


def test_a_seeded_generator_makes_jitter_reproducible() -> None:
    backoff = Backoff(min=1, max=10, jitter=0.5)
    a = OutboxRetry(backoff, 5, rng=random.Random(7))
    b = OutboxRetry(backoff, 5, rng=random.Random(7))
    assert [a.delay(n) for n in range(1, 6)] == [b.delay(n) for n in range(1, 6)]


@given(
    low=st.floats(0, 100),
    span=st.floats(0, 1000),
    jitter=st.floats(0, 2),
    attempts=st.integers(1, 200),
    max_attempts=st.integers(1, 20),
    seed=st.integers(0, 2**32),
)
def test_delay_is_bounded_and_dead_letter_comes_exactly_at_max_attempts(
    low: float, span: float, jitter: float, attempts: int, max_attempts: int, seed: int
) -> None:
    backoff = Backoff(min=low, max=low + span, jitter=jitter)
    policy = OutboxRetry(backoff, max_attempts, rng=random.Random(seed))
    base = min(backoff.max, backoff.min * 2.0 ** min(attempts - 1, 64))
    delay = policy.delay(attempts)
    assert base <= delay <= base * (1 + jitter) + 1e-9
    decision = policy.decide(attempts, RuntimeError())
    assert (decision.dead_letter is not None) == (attempts >= max_attempts)
