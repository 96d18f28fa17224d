"""The one retry rule of the bus and the relay (``triotok.resilience.RetryPolicy``)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok._exceptions import ActorCrashed, PermanentError, SchemaError, TransientError
from triotok.resilience import Backoff, RetryDecision, RetryPolicy, backoff_delay
from triotok.store import OutboxRetry

NO_JITTER = Backoff(min=1.0, max=8.0, jitter=0.0)


def test_attempt_n_waits_the_backoff_of_n_minus_one_then_gives_up() -> None:
    policy = RetryPolicy(attempts=5, backoff=NO_JITTER)
    rng = random.Random(0)
    delays = [policy.decide(n, TransientError("x"), rng) for n in range(1, 6)]
    assert delays == [
        RetryDecision(1.0),
        RetryDecision(2.0),
        RetryDecision(4.0),
        RetryDecision(8.0),
        RetryDecision(0.0, "max_attempts"),
    ]


@pytest.mark.parametrize(
    "error",
    [PermanentError("x"), SchemaError("x"), ActorCrashed("/app/s", PermanentError("x"))],
)
def test_final_errors_give_up_at_once(error: BaseException) -> None:
    decision = RetryPolicy(attempts=5).decide(1, error, random.Random())
    assert decision == RetryDecision(0.0, "permanent")


@given(
    attempts=st.integers(1, 12),
    attempt=st.integers(1, 12),
    seed=st.integers(0, 2**32),
    jitter=st.floats(0, 1),
    permanent=st.booleans(),
)
def test_the_outbox_rule_is_the_bus_rule(
    attempts: int, attempt: int, seed: int, jitter: float, permanent: bool
) -> None:
    """``OutboxRetry`` is a thin layer: same decisions, same random draws."""
    backoff = Backoff(min=0.5, max=30.0, jitter=jitter)
    error = PermanentError("x") if permanent else RuntimeError("x")
    outbox = OutboxRetry(backoff, attempts, rng=random.Random(seed))
    bus = RetryPolicy(attempts=attempts, backoff=backoff)
    expected = bus.decide(attempt, error, random.Random(seed))
    assert outbox.decide(attempt, error) == expected
    if expected.dead_letter is None:
        assert expected.delay == backoff_delay(backoff, attempt - 1, random.Random(seed))
